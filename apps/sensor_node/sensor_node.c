// sensor_node: samples a temperature sensor every minute, keeps running statistics, detects
// threshold crossings, batches readings, keeps full batches in a queue map (the outbox) and asks
// the radio scheduler to send them before a deadline; samples five times slower while the
// battery is low.
#include "iotbpf.h"

#define SENSOR_TEMPERATURE 0
#define SAMPLE_TIMER 0
#define BATCH_MAX 16
#define OUTBOX_MAX 8

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
	__u32 queued;     // batches waiting in the outbox
	__u32 low_power;  // 1 while sampling slowly
	__u32 above;      // 1 while above threshold_high
	__u32 pad;
};

struct reading {
	__u32 t_s;        // seconds since boot
	__s32 value;      // m°C
};

struct batch {
	__u32 n;          // readings in r
	__u32 pad;
	struct reading r[BATCH_MAX];
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
struct batch filling SEC(".bss.filling");  // the batch being filled, one reading per sample

// Full batches wait here until the radio scheduler accepts them (iot_radio_send fails with
// -ENOSPC while its transmit queue is full); when the outbox is full the oldest batch is dropped.
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, OUTBOX_MAX);
	__type(value, struct batch);
} outbox SEC(".maps");

SEC("boot")
int on_boot(struct iot_boot_ctx *ctx)
{
	if (stats.count == 0) {  // first boot (pinned maps keep the statistics across restarts)
		stats.min = 0x7fffffffffffffffLL;
		stats.max = -0x7fffffffffffffffLL;
	}
	return 0;
}

// Move the filled batch into the outbox, then hand the oldest queued batch to the radio.
static __always_inline void flush_batch(void)
{
	if (bpf_map_push_elem(&outbox, &filling, BPF_EXIST) == 0)
		state.queued++;
	filling.n = 0;

	struct batch b = {};
	if (bpf_map_peek_elem(&outbox, &b) != 0)
		return;
	__u32 n = b.n;
	if (n > BATCH_MAX)
		n = BATCH_MAX;
	if (n == 0 || iot_radio_send(b.r, n * sizeof(struct reading), config.batch_deadline_ns) != 0) {
		stats.batches_failed++;  // stays in the outbox; retried at the next flush
		return;
	}
	stats.batches_sent++;
	if (bpf_map_pop_elem(&outbox, &b) == 0 && state.queued)
		state.queued--;
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

	__u32 i = filling.n;
	if (i < BATCH_MAX) {
		filling.r[i].t_s = ctx->now_ns / 1000000000ULL;
		filling.r[i].value = v;
		filling.n = i + 1;
	}
	if (filling.n >= config.batch_size || filling.n >= BATCH_MAX)
		flush_batch();
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
