/* A timer program that traces bcc-style: bpf_trace_printk with 0 to 3 arguments and iot_log,
 * so `simulate --trace-log` has lines with virtual times to show. */
#include "iotbpf.h"

__u64 ticks;

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	ticks++;
	bpf_trace_printk("tick", 5);
	bpf_trace_printk("tick %u", 8, ctx->expirations);
	bpf_trace_printk("tick %u timer %u", 17, ctx->expirations, ctx->timer_id);
	bpf_trace_printk("t=%llu n=%u id=%d", 18, ctx->now_ns, ctx->expirations, ctx->timer_id);
	if (ctx->expirations % 2 == 0)
		iot_log("even", 5, ctx->expirations);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
