// rx_filter: a stateful filter on received packets, the IoT form of XDP DDoS protection.
// Sources in the blocklist map (which can be updated from outside: `iotbpf map`, MQTT command,
// Node.map_update) are dropped; every other source is rate limited per time window.
#include "iotbpf.h"

#define VERDICT_PASSED 0
#define VERDICT_BLOCKED 1
#define VERDICT_RATE_LIMITED 2

#define MARK_BLOCKED 1
#define MARK_RATE_LIMITED 2

struct limits {
	__u64 window_ns;      // length of a rate-limit window
	__u32 max_packets;    // packets allowed per source per window
	__u32 pad;
};

struct source_rate {
	__u64 window_start_ns;
	__u32 packets;        // packets seen in the current window
	__u32 dropped;        // packets of this source dropped by the rate limit, ever
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);    // source address
	__type(value, __u32);  // nonzero: blocked
} blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct source_rate);
} rates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct limits);
} limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);    // VERDICT_*
	__type(value, __u64);  // packets
} verdicts SEC(".maps");

static __always_inline void count(__u32 verdict)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &verdict);
	if (n)
		*n += 1;
}

SEC("radio_rx")
int on_rx(struct iot_radio_rx_ctx *ctx)
{
	__u32 src = ctx->src;
	__u32 *blocked = bpf_map_lookup_elem(&blocklist, &src);
	if (blocked && *blocked) {
		ctx->mark = MARK_BLOCKED;
		count(VERDICT_BLOCKED);
		return IOT_RX_DROP;
	}

	__u32 zero = 0;
	struct limits *l = bpf_map_lookup_elem(&limits, &zero);
	__u64 window = 60ULL * 1000000000ULL;
	__u32 max_packets = 10;
	if (l && l->window_ns) {
		window = l->window_ns;
		max_packets = l->max_packets;
	}

	__u64 now = ctx->now_ns;
	struct source_rate *r = bpf_map_lookup_elem(&rates, &src);
	if (!r) {
		struct source_rate fresh = { .window_start_ns = now, .packets = 1, .dropped = 0 };
		bpf_map_update_elem(&rates, &src, &fresh, BPF_ANY);
		count(VERDICT_PASSED);
		return IOT_RX_PASS;
	}
	if (now - r->window_start_ns >= window) {
		r->window_start_ns = now;
		r->packets = 0;
	}
	r->packets++;
	if (r->packets > max_packets) {
		r->dropped++;
		ctx->mark = MARK_RATE_LIMITED;
		count(VERDICT_RATE_LIMITED);
		return IOT_RX_DROP;
	}
	count(VERDICT_PASSED);
	return IOT_RX_PASS;
}

char LICENSE[] SEC("license") = "GPL";
