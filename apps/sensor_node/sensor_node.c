// sensor_node: samples a temperature sensor every minute, keeps running statistics, detects
// threshold crossings, batches readings and asks the radio scheduler to send them before a
// deadline; samples five times slower while the battery is low.
#include "iotbpf.h"

#define SENSOR_TEMPERATURE 0
#define SAMPLE_TIMER 0
#define BATCH_MAX 16

struct config {
	__s64 threshold_high;     // m°C: crossing upwards raises an alarm packet
	__u64 period_ns;          // normal sampling period
	__u64 low_power_period_ns;
	__u64 batch_deadline_ns;  // a full batch must be on air within this
	__u64 alarm_deadline_ns;  // an alarm must be on air within this
	__u32 batch_size;         // readings per batch packet (<= BATCH_MAX)
	__u32 low_battery_permille;
};

struct stats {
	__u64 count;
	__s64 sum;
	__u64 sum_sq;
	__s64 min;
	__s64 max;
	__s64 last;
	__u64 alarms;
	__u64 batches_sent;
	__u64 batches_failed;
	__u64 tx_acked;
	__u64 tx_lost;
	__u64 read_errors;
};

struct state {
	__u32 pending;    // readings in the batch queue
	__u32 low_power;  // 1 while sampling slowly
	__u32 above;      // 1 while above threshold_high
	__u32 pad;
};

struct reading {
	__u32 t_s;        // seconds since boot
	__s32 value;      // m°C
};

// Configuration, statistics and state are global variables: libbpf-style global-data maps
// (".data.config", ".bss.stats", ".bss.state", each a one-entry array map) that programs reach
// without a lookup and that Python and remote commands read and write like any other map.
struct config config SEC(".data.config") = {
	.threshold_high = 30000,
	.period_ns = 60ULL * 1000000000ULL,
	.low_power_period_ns = 5 * 60ULL * 1000000000ULL,
	.batch_deadline_ns = 30ULL * 60 * 1000000000ULL,
	.alarm_deadline_ns = 10ULL * 1000000000ULL,
	.batch_size = 15,
	.low_battery_permille = 200,
};
struct stats stats SEC(".bss.stats");
struct state state SEC(".bss.state");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, BATCH_MAX);
	__type(value, struct reading);
} batch SEC(".maps");

SEC("boot")
int on_boot(struct iot_boot_ctx *ctx)
{
	if (stats.count == 0) {  // first boot (pinned maps keep the statistics across restarts)
		stats.min = 0x7fffffffffffffffLL;
		stats.max = -0x7fffffffffffffffLL;
	}
	return 0;
}

static __always_inline void send_batch(void)
{
	struct reading buf[BATCH_MAX] = {};
	__u32 n = 0;
#pragma unroll
	for (int i = 0; i < BATCH_MAX; i++) {
		if (bpf_map_pop_elem(&batch, &buf[i]) != 0)
			break;
		n++;
	}
	state.pending = 0;
	if (n == 0)
		return;
	if (iot_radio_send(buf, n * sizeof(struct reading) > sizeof(buf) ? sizeof(buf) : n * sizeof(struct reading),
			   config.batch_deadline_ns) == 0)
		stats.batches_sent++;
	else
		stats.batches_failed++;
}

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	if (ctx->timer_id != SAMPLE_TIMER)
		return 0;
	__s64 v = iot_sensor_read(SENSOR_TEMPERATURE);
	if (v == IOT_SENSOR_ERROR) {
		stats.read_errors++;
		return 0;
	}
	stats.count++;
	stats.sum += v;
	stats.sum_sq += (__u64)(v * v);
	if (v < stats.min)
		stats.min = v;
	if (v > stats.max)
		stats.max = v;
	stats.last = v;

	if (v > config.threshold_high && !state.above) {
		struct reading alarm = { .t_s = ctx->now_ns / 1000000000ULL, .value = v };
		state.above = 1;
		stats.alarms++;
		iot_radio_send(&alarm, sizeof(alarm), config.alarm_deadline_ns);
	} else if (v <= config.threshold_high - 500) {
		state.above = 0;  // 0.5 °C hysteresis
	}

	struct reading r = { .t_s = ctx->now_ns / 1000000000ULL, .value = v };
	if (bpf_map_push_elem(&batch, &r, BPF_ANY) == 0)
		state.pending++;
	if (state.pending >= config.batch_size)
		send_batch();
	return 0;
}

SEC("battery")
int on_battery(struct iot_battery_ctx *ctx)
{
	if (ctx->soc_permille < config.low_battery_permille && !state.low_power) {
		state.low_power = 1;
		iot_timer_arm(SAMPLE_TIMER, config.low_power_period_ns, config.low_power_period_ns);
		__u64 msg[2];  // "low battery", built with stores so the object needs no .rodata
		msg[0] = 0x7474616220776f6cULL;
		msg[1] = 0x797265ULL;
		iot_log(msg, sizeof(msg), ctx->soc_permille);
	} else if (ctx->soc_permille >= config.low_battery_permille + 50 && state.low_power) {
		state.low_power = 0;
		iot_timer_arm(SAMPLE_TIMER, config.period_ns, config.period_ns);
	}
	return 0;
}

SEC("radio_tx_done")
int on_tx_done(struct iot_radio_tx_done_ctx *ctx)
{
	if (ctx->ok)
		stats.tx_acked++;
	else
		stats.tx_lost++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
