// app_monitor: per-app usage counters from app_usage events (Android-like sessions or a Linux
// monitor's samples): foreground time, CPU time, wakeups, wakelock time, network and storage
// bytes, energy, per uid.
#include "iotbpf.h"

struct app_stats {
	__u64 foreground_ns;  // time in the foreground with the screen on
	__u64 cpu_ns;
	__u64 rx_bytes;       // network bytes received
	__u64 tx_bytes;       // network bytes sent
	__u64 wakelock_ns;
	__u64 energy_uj;
	__u32 wakeups;
	__u32 sessions;       // times the app came to the foreground
	__u64 disk_read_bytes;
	__u64 disk_write_bytes;
};

struct fg_state {
	__u64 since_ns;       // when the current foreground stretch started
	__u32 uid;            // the foreground app
	__u32 has_fg;         // 1 once some app has been in the foreground
	__u32 screen_on;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);   // uid
	__type(value, struct app_stats);
} app_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_state);
} fg SEC(".maps");

static __always_inline struct app_stats *stats_of(__u32 uid)
{
	struct app_stats *s = bpf_map_lookup_elem(&app_stats, &uid);
	if (s)
		return s;
	struct app_stats fresh = {};
	bpf_map_update_elem(&app_stats, &uid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&app_stats, &uid);
}

// Credit the foreground app with the time since the last switch (only while the screen is on).
static __always_inline void charge_foreground(struct fg_state *f, __u64 now)
{
	if (!f->has_fg || !f->screen_on)
		return;
	struct app_stats *s = stats_of(f->uid);
	if (s)
		s->foreground_ns += now - f->since_ns;
	f->since_ns = now;
}

SEC("app_usage")
int on_usage(struct iot_app_usage_ctx *ctx)
{
	__u32 zero = 0;
	struct fg_state *f = bpf_map_lookup_elem(&fg, &zero);
	if (!f)
		return 0;
	__u64 now = ctx->now_ns;
	__u32 kind = ctx->kind;

	if (kind == IOT_USAGE_SCREEN_ON) {
		f->screen_on = 1;
		f->since_ns = now;
		return 0;
	}
	if (kind == IOT_USAGE_SCREEN_OFF) {
		charge_foreground(f, now);
		f->screen_on = 0;
		return 0;
	}
	if (kind == IOT_USAGE_BRIGHTNESS)   // the screen's, not an app's
		return 0;
	if (kind == IOT_USAGE_FOREGROUND) {
		charge_foreground(f, now);
		f->uid = ctx->uid;
		f->has_fg = 1;
		f->since_ns = now;
	}

	struct app_stats *s = stats_of(ctx->uid);
	if (!s)
		return 0;
	if (kind == IOT_USAGE_FOREGROUND)
		s->sessions++;
	if (kind == IOT_USAGE_WAKELOCK)
		s->wakelock_ns += ctx->duration_ns;
	s->cpu_ns += ctx->cpu_time_ns;
	if (kind == IOT_USAGE_DISK) {   // storage I/O: rx_bytes read, tx_bytes written
		s->disk_read_bytes += ctx->rx_bytes;
		s->disk_write_bytes += ctx->tx_bytes;
	} else {
		s->rx_bytes += ctx->rx_bytes;
		s->tx_bytes += ctx->tx_bytes;
	}
	s->energy_uj += ctx->energy_uj;
	s->wakeups += ctx->wakeups;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
