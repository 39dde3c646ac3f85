/* Emits one perf sample and one ring buffer record per timer tick (tests of poll and --events-out). */
#include "iotbpf.h"
struct event { __u64 t; __u32 n; __u32 pad; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(int)); __uint(value_size, sizeof(__u32)); } pev SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
SEC("timer") int on_timer(struct iot_timer_ctx *ctx)
{
	struct event e = { ctx->now_ns, ctx->expirations, 0 };
	bpf_perf_event_output(ctx, &pev, BPF_F_CURRENT_CPU, &e, sizeof(e));
	struct event *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (r) { r->t = ctx->now_ns; r->n = ctx->expirations * 10; r->pad = 0; bpf_ringbuf_submit(r, 0); }
	return 0;
}
