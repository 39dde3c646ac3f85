// ble_commands: an nRF52840 BLE peripheral that takes commands from its central. At boot it
// asks the scheduler for connection events (a 3 ms receive window every second, through the
// iot_policy map); each command that arrives is counted and answered with a 20-byte reply due
// within 2 s. A command that arrives while the radio sleeps is lost (counted by the OS).
#include "iotbpf.h"

IOT_MAP_DEF_iot_policy;

struct reply {
	__u64 t_ns;
	__u32 src;
	__u32 seq;
	__u32 len;
	__u32 pad;
};

__u64 commands;

SEC("boot")
int on_boot(struct iot_boot_ctx *ctx)
{
	__u32 key = IOT_POLICY_LISTEN_INTERVAL_NS;
	__u64 interval = 1000000000ULL;
	bpf_map_update_elem(&iot_policy, &key, &interval, BPF_ANY);
	key = IOT_POLICY_LISTEN_WINDOW_NS;
	__u64 window = 3000000ULL;
	bpf_map_update_elem(&iot_policy, &key, &window, BPF_ANY);
	return 0;
}

SEC("radio_rx")
int on_rx(struct iot_radio_rx_ctx *ctx)
{
	struct reply r = {0};
	__builtin_memset(&r, 0, sizeof(r));
	r.t_ns = ctx->now_ns;
	r.src = ctx->src;
	r.seq = (__u32)++commands;
	r.len = ctx->len;
	iot_radio_send(&r, sizeof(r), 2000000000ULL);
	return IOT_RX_PASS;
}

char LICENSE[] SEC("license") = "GPL";
