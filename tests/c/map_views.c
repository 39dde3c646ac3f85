/* Maps with every key shape a view must turn into a hashable Python key: a struct key, an LPM
 * trie key with a byte array, a MAC-address byte array, plus a prog_array for tail calls. */
#include "iotbpf.h"

struct flow { __u32 addr; __u16 port; __u16 proto; };
struct lpm_v4 { __u32 prefixlen; __u8 data[4]; };
struct mac { __u8 addr[6]; };
struct counts { __u64 packets; __u64 bytes; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow);
	__type(value, struct counts);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, 1);  /* BPF_F_NO_PREALLOC */
	__type(key, struct lpm_v4);
	__type(value, __u32);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u8[6]);
	__type(value, __u64);
} macs SEC(".maps");

SEC("prog") int second(void *ctx) { return 2; }
SEC("prog") int third(void *ctx) { return 3; }

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} chain SEC(".maps") = { .values = { [1] = (void *)&second, [3] = (void *)&third } };

SEC("prog") int first(struct iot_radio_rx_ctx *ctx)
{
	struct flow f = { 0x0a000001, 80, 6 };
	struct counts *c = bpf_map_lookup_elem(&flows, &f);
	if (c) {
		c->packets += 1;
		c->bytes += 100;
	}
	struct lpm_v4 k = { 32, { 10, 1, 2, 3 } };
	__u32 *v = bpf_map_lookup_elem(&lpm, &k);
	__u8 m[6] = { 0xde, 0xad, 0xbe, 0xef, 0, 1 };
	__u64 *n = bpf_map_lookup_elem(&macs, m);
	if (n)
		*n += 1;
	return (v ? *v : 0) * 10;
}
