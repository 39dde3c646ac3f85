/* Loops the verifier must reject fast, naming the back edge and its C line, next to bounded
 * loops of the same shapes it must still accept. */
#include "iotbpf.h"

SEC("timer") int counter_vs_reading(struct iot_timer_ctx *ctx)
{
	__s64 v = iot_sensor_read(0);
	__u64 n = 0;
	for (__s64 i = 0; i < v; i++)
		n += iot_gpio_read(i & 7);
	return n;
}

SEC("timer") int while_reading(struct iot_timer_ctx *ctx)
{
	__u64 n = 0;
	while (iot_sensor_read(0) > 0)
		n += ctx->expirations;
	return n;
}

SEC("timer") int clamped(struct iot_timer_ctx *ctx)
{
	__s64 v = iot_sensor_read(0);
	__u64 n = 0;
	if (v > 200)
		v = 200;
	for (__s64 i = 0; i < v; i++)
		n += iot_gpio_read(i & 7);
	return n;
}

SEC("timer") int two_conditions(struct iot_timer_ctx *ctx)
{
	__s64 v = iot_sensor_read(0);
	__u64 n = 0;
	for (__s64 i = 0; i < v && i < 150; i++)
		n += iot_gpio_read(i & 7);
	return n;
}

SEC("timer") int ends_by_another_condition(struct iot_timer_ctx *ctx)
{
	__s64 v = iot_sensor_read(0);
	__u64 x = (__u64)iot_sensor_read(1), n = 0;
	for (__s64 i = 0; i < v; i++) {
		x >>= 1;
		if (x == 0)
			break;      /* ends the loop within 64 iterations, whatever v is */
		n += x;
	}
	return n;
}
