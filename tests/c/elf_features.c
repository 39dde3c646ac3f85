/* ELF loader features: several programs, legacy and BTF maps, globals, strings, subprograms. */
#include "iotbpf.h"

struct bpf_map_def_legacy { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct bpf_map_def_legacy legacy SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0 };

struct value { __u64 packets; __s32 last; __u8 tag[4]; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

__u64 generation = 3;
__u32 scratch[4];
const __u64 weights[4] = {10, 20, 30, 40};
char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __noinline __u64 weight(__u32 i)
{
	return weights[i & 3] + generation;
}

SEC("timer") __u64 on_timer(void *ctx)
{
	__u32 key = 7;
	struct value *v = bpf_map_lookup_elem(&stats, &key);
	if (!v) {
		struct value init = { .packets = 1, .last = -1, .tag = "abc" };
		bpf_map_update_elem(&stats, &key, &init, BPF_NOEXIST);
		return 0;
	}
	v->packets += weight(key);
	scratch[1] += 1;
	return v->packets;
}

SEC("gpio") __u64 on_gpio(void *ctx)
{
	__u32 k = 2;
	__u64 *slot = bpf_map_lookup_elem(&legacy, &k);
	if (slot)
		*slot += 5;
	return weight(1) + (slot ? *slot : 0);
}
