// wifi_uplink: an ESP32 Wi-Fi node whose energy is the radio's. Every 10 s it reads a sensor,
// runs a real piece of CPU work (a 64-tap filter over its recent samples) and queues a 256-byte
// record to upload within a minute: policies differ in how many Wi-Fi wake-ups (3 ms ramps at
// 80 mA) they pay, and dvfs and race in the CPU frequency the filter runs at.
#include "iotbpf.h"

#define SAMPLE_TIMER 0
#define SENSOR 0
#define TAPS 64

struct record {
	__s64 filtered;
	__s64 raw[TAPS / 4];
	__u64 t_ns;
	__u64 seq;
	__u8 pad[256 - 8 - 8 * (TAPS / 4) - 16];
};

__s64 history[TAPS];
__u32 head;
__u64 seq;
struct record rec;

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	__s64 v = iot_sensor_read(SENSOR);
	if (v == IOT_SENSOR_ERROR)
		return 0;
	history[head & (TAPS - 1)] = v;
	head++;
	__s64 acc = 0;
	for (__u32 i = 0; i < TAPS; i++) {
		__s64 w = (__s64)(i + 1) * (TAPS - i);   // a triangular window
		acc += w * history[(head + i) & (TAPS - 1)];
	}
	rec.filtered = acc >> 15;   // scaled (the window sums to 45760)
	for (__u32 i = 0; i < TAPS / 4; i++)
		rec.raw[i] = history[(head + 3 * TAPS / 4 + i) & (TAPS - 1)];
	rec.t_ns = ctx->now_ns;
	rec.seq = ++seq;
	iot_radio_send(&rec, sizeof(rec), 60ULL * 1000000000ULL);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
