// lora_alarm: a LoRa (SX1276) field node. Samples a temperature sensor every 30 s, reports a
// summary every 5 minutes (deadline 5 minutes) and raises an alarm packet with a tight deadline
// (3 s) when the reading crosses a threshold: the scheduler must wake the radio for alarms
// quickly but may batch reports.
#include "iotbpf.h"

#define SAMPLE_TIMER 0
#define REPORT_TIMER 1
#define SENSOR_TEMPERATURE 0

struct settings {
	__s64 threshold;           // m°C: crossing upwards raises an alarm
	__u64 report_deadline_ns;  // a report must be on air within this
	__u64 alarm_deadline_ns;   // an alarm must be on air within this
};

struct report {
	__s64 min;
	__s64 max;
	__s64 last;
	__u32 samples;
	__u32 alarms;
};

struct settings settings = {
	.threshold = 25000,
	.report_deadline_ns = 300ULL * 1000000000ULL,
	.alarm_deadline_ns = 3ULL * 1000000000ULL,
};

struct report current = { .min = 0x7fffffffffffffffLL, .max = -0x7fffffffffffffffLL };
__u32 above;

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	if (ctx->timer_id == REPORT_TIMER) {
		iot_radio_send(&current, sizeof(current), settings.report_deadline_ns);
		current.min = 0x7fffffffffffffffLL;
		current.max = -0x7fffffffffffffffLL;
		current.samples = 0;
		current.alarms = 0;
		return 0;
	}
	__s64 v = iot_sensor_read(SENSOR_TEMPERATURE);
	if (v == IOT_SENSOR_ERROR)
		return 0;
	current.samples++;
	current.last = v;
	if (v < current.min)
		current.min = v;
	if (v > current.max)
		current.max = v;
	if (v > settings.threshold && !above) {
		__s64 alarm[2] = { (__s64)(ctx->now_ns / 1000000000ULL), v };
		above = 1;
		current.alarms++;
		iot_radio_send(alarm, sizeof(alarm), settings.alarm_deadline_ns);
	} else if (v <= settings.threshold - 200) {
		above = 0;  // 0.2 °C hysteresis
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
