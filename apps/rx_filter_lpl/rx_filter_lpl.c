// rx_filter_lpl: the rx_filter app (blocklist plus per-source rate limits, same traffic with its
// flood) on a node that receives through a wake-up-sampling MAC (ContikiMAC/LPL-like): at boot it
// sets a channel check every 8 s in iot_policy; senders repeat a packet until the next check, so
// the radio need not listen all the time to receive everything (docs/energy.md, Scenarios).
#include "../rx_filter/rx_filter.c"

IOT_MAP_DEF_iot_policy;

SEC("boot")
int on_boot(struct iot_boot_ctx *ctx)
{
	__u32 key = IOT_POLICY_CHECK_INTERVAL_NS;
	__u64 check = 8000000000ULL;
	bpf_map_update_elem(&iot_policy, &key, &check, BPF_ANY);
	return 0;
}
