/* Maps of maps from BTF definitions: an array of maps with two initial inner arrays, and a hash
 * of maps with no initial entries (its template comes from __array(values, ...)). */
#include "iotbpf.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [0] = &inner_a, [1] = &inner_b } };

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} by_id SEC(".maps");

struct input { __u64 a, b, c, d; };

/* adds in->b to slot in->c & 3 of outer[in->a], returns the new value (or 1000 + missing) */
SEC("prog") __u64 bump(struct input *in)
{
	__u32 which = in->a;
	void *m = bpf_map_lookup_elem(&outer, &which);
	if (!m)
		return 1000;
	__u32 slot = in->c & 3;
	__u64 *v = bpf_map_lookup_elem(m, &slot);
	if (!v)
		return 2000;
	*v += in->b;
	__u32 id = 7;
	void *h = bpf_map_lookup_elem(&by_id, &id);
	if (h) {
		__u64 *w = bpf_map_lookup_elem(h, &slot);
		if (w)
			*w += 1;
	}
	return *v;
}
