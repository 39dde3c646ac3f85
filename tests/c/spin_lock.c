/* bpf_spin_lock in a map value, used as Linux allows (lock, plain loads/stores, unlock), and
 * the misuses the verifier must refuse (selected with -DMISUSE=n). */
#include "iotbpf.h"

struct account {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 balance;
	__u64 updates;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct account);
} accounts SEC(".maps");

struct input { __u64 a, b, c, d; };

SEC("prog") __u64 deposit(struct input *in)
{
	__u32 key = in->a & 3;
	struct account *acc = bpf_map_lookup_elem(&accounts, &key);
	if (!acc)
		return 0;
	bpf_spin_lock(&acc->lock);
	acc->balance += in->b;
	acc->updates += 1;
#if MISUSE == 1
	bpf_ktime_get_ns();             /* a helper call while holding the lock */
#endif
#if MISUSE == 2
	if (in->c)
		return 7;               /* exit with the lock held */
#endif
#if MISUSE == 3
	bpf_spin_lock(&acc->lock);      /* taken twice */
#endif
	__u64 now = acc->balance;
	bpf_spin_unlock(&acc->lock);
#if MISUSE == 4
	bpf_spin_unlock((struct bpf_spin_lock *)&acc->balance);  /* not a lock */
#endif
#if MISUSE == 5
	now += *(volatile __u32 *)&acc->lock;  /* reads the lock word itself */
#endif
	return now;
}
