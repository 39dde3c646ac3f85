// neutral_node: samples a sensor and sends each reading on the radio at a period the node's
// energy-neutral controller chooses (iotbpf/energy/neutral.py writes it into .data.duty every
// hour); when the period changes the timer is re-armed with it.
#include "iotbpf.h"

#define SENSOR 0
#define SAMPLE_TIMER 0

struct duty {
	__u64 period_ns;  // wanted sampling/sending period (the controller writes it)
	__u64 armed_ns;   // period the timer runs at now
};

struct stats {
	__u64 samples;
	__u64 sent;
	__u64 rejected;
};

struct reading {
	__u32 t_s;
	__s32 value;
};

struct duty duty SEC(".data.duty") = {
	.period_ns = 300ULL * 1000000000ULL,
	.armed_ns = 300ULL * 1000000000ULL,
};
struct stats stats SEC(".bss.stats");

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	if (ctx->timer_id != SAMPLE_TIMER)
		return 0;
	__s64 v = iot_sensor_read(SENSOR);
	stats.samples++;
	struct reading r = { .t_s = ctx->now_ns / 1000000000ULL, .value = v };
	if (iot_radio_send(&r, sizeof(r), 60ULL * 1000000000ULL) == 0)
		stats.sent++;
	else
		stats.rejected++;
	__u64 want = duty.period_ns;
	if (want != duty.armed_ns && want >= 1000000000ULL) {
		duty.armed_ns = want;
		iot_timer_arm(SAMPLE_TIMER, want, want);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
