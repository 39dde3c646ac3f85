/* Map types and helpers driven from C: queue/stack, LPM, ring buffer, tail calls, bpf_loop,
 * probe_read, csum_diff, and a deliberate NULL dereference for fault line reporting. */
#include "iotbpf.h"

struct input { __u64 a, b, c, d; };

struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 4); __type(value, __u64); } fifo SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 4); __type(value, __u64); } lifo SEC(".maps");

struct lpm_v4 { __u32 prefixlen; __u8 addr[4]; };
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, 1); /* BPF_F_NO_PREALLOC */
	__type(key, struct lpm_v4);
	__type(value, __u32);
} routes SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 8); __type(key, __u32); __type(value, __u32); } jmp SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counters SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } table SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 3); __type(key, __u32); __type(value, __u64); } recent SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 64); __type(value, __u32); } seen SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } per_cpu SEC(".maps");

static __u64 *counter(__u32 i)
{
	return bpf_map_lookup_elem(&counters, &i);
}

SEC("queue") __u64 queue_prog(struct input *in)
{
	__u64 v = in->a, out = 0, got;
	bpf_map_push_elem(&fifo, &v, 0);
	v = in->b;
	bpf_map_push_elem(&fifo, &v, 0);
	bpf_map_push_elem(&lifo, &in->a, 0);
	bpf_map_push_elem(&lifo, &in->b, 0);
	if (bpf_map_pop_elem(&fifo, &got) == 0)
		out = got << 32;
	if (bpf_map_pop_elem(&lifo, &got) == 0)
		out |= got;
	return out;
}

SEC("lpm") __u64 lpm_prog(struct input *in)
{
	struct lpm_v4 key = { .prefixlen = 32 };
	__u32 ip = (__u32)in->a;
	key.addr[0] = ip >> 24;
	key.addr[1] = ip >> 16;
	key.addr[2] = ip >> 8;
	key.addr[3] = ip;
	__u32 *hop = bpf_map_lookup_elem(&routes, &key);
	return hop ? *hop : 0xffffffff;
}

struct event { __u64 seq; __u64 value; };

SEC("ringbuf") __u64 ringbuf_prog(struct input *in)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 1;
	e->seq = in->a;
	e->value = in->b;
	if (in->c & 1)
		bpf_ringbuf_discard(e, 0);
	else
		bpf_ringbuf_submit(e, 0);
	__u64 extra = in->d;
	bpf_ringbuf_output(&events, &extra, sizeof(extra), 0);
	return bpf_ringbuf_query(&events, 0); /* BPF_RB_AVAIL_DATA */
}

/* tail calls: chain0 -> jmp[in->a] ...; each link counts and jumps to the next slot */
SEC("chain") __u64 chain_prog(struct input *in)
{
	__u64 *c = counter(0);
	if (c)
		*c += 1;
	bpf_tail_call(in, &jmp, (__u32)in->a);
	return c ? *c : 0; /* reached only when the tail call fails */
}

SEC("link") __u64 link_prog(struct input *in)
{
	__u64 *c = counter(1);
	if (c)
		__sync_fetch_and_add(c, 1);
	in->a += 1;
	bpf_tail_call(in, &jmp, (__u32)in->a);
	return 1000 + (c ? *c : 0);
}

static long add_index(__u32 i, void *ctx)
{
	__u64 *sum = ctx;
	*sum += i;
	return *sum > 1000 ? 1 : 0;
}

SEC("loop") __u64 loop_prog(struct input *in)
{
	__u64 sum = 0;
	long n = bpf_loop((__u32)in->a, add_index, &sum, in->b);
	return ((__u64)n << 32) | (sum & 0xffffffff);
}

SEC("probe") __u64 probe_prog(struct input *in)
{
	__u64 buf[2] = {0, 0};
	long ok = bpf_probe_read(buf, 16, in);
	long bad = bpf_probe_read(buf + 1, 8, (void *)in->c);
	return buf[0] + buf[1] + ((__u64)(ok == 0) << 40) + ((__u64)(bad == -14) << 41);
}

SEC("csum") __u64 csum_prog(struct input *in)
{
	__u32 from[2] = { (__u32)in->a, (__u32)(in->a >> 32) };
	__u32 to[2] = { (__u32)in->b, (__u32)(in->b >> 32) };
	return (__u64)bpf_csum_diff(from, 8, to, 8, (__u32)in->c);
}

SEC("printk") __u64 printk_prog(struct input *in)
{
	char fmt[] = "v=%d u=%u x=%x";
	bpf_trace_printk(fmt, sizeof(fmt), (int)in->a, (__u32)in->b, (__u32)in->c);
	return bpf_get_smp_processor_id() + bpf_get_prandom_u32() * 0 + bpf_ktime_get_ns();
}

SEC("fault") __u64 fault_prog(struct input *in)
{
	__u32 key = (__u32)in->a;
	__u64 *v = bpf_map_lookup_elem(&table, &key);
	return *v + 1; /* no NULL check: faults when the key is missing */
}

/* LRU: touch key a (lookup), then insert key b; returns 1 if a is still present afterwards */
SEC("lru") __u64 lru_prog(struct input *in)
{
	__u32 a = (__u32)in->a, b = (__u32)in->b;
	__u64 one = 1;
	bpf_map_lookup_elem(&recent, &a);
	bpf_map_update_elem(&recent, &b, &one, BPF_ANY);
	return bpf_map_lookup_elem(&recent, &a) != 0;
}

/* bloom filter: add in->a, then report whether in->b may be present (0) or not (-ENOENT) */
SEC("bloom") __s64 bloom_prog(struct input *in)
{
	__u32 a = (__u32)in->a, b = (__u32)in->b;
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 *n = bpf_map_lookup_elem(&per_cpu, &cpu);
	if (n)
		*n += 1;
	bpf_map_push_elem(&seen, &a, BPF_ANY);
	return bpf_map_peek_elem(&seen, &b);
}
