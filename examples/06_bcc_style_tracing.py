"""bcc-style tracing while a node simulates: bpf_trace_printk lines, ring buffer records and perf
buffer samples, each delivered to a Python callback the moment a program emits it.

A temperature-watch app written in C samples a sensor every minute; it traces each reading with
bpf_trace_printk, sends readings above a threshold through a ring buffer (bpf_ringbuf_reserve /
submit) and a per-hour summary through a perf event array (bpf_perf_event_output). Python opens
the trace, the ring buffer and the perf buffer with callbacks, as bcc's ``trace_print``,
``open_ring_buffer`` and ``open_perf_buffer`` do, and simulates a day (two hours with --quick).

    python examples/06_bcc_style_tracing.py
    python examples/06_bcc_style_tracing.py --quick
Needs clang-19 (apt install clang-19).
"""

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path

import iotbpf
from iotbpf.api import build_app

WATCH_C = r"""
#include "iotbpf.h"

struct reading { __u64 t_ns; __s64 milli_c; };
struct summary { __u64 t_ns; __s64 max_milli_c; __u32 readings; __u32 hot; };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} hot_readings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(__u32));
} hourly SEC(".maps");

const volatile __s64 threshold = 23000;   /* milli-degrees C */
struct summary hour;

SEC("timer")
int watch(struct iot_timer_ctx *ctx)
{
	__s64 t = iot_sensor_read(0);
	bpf_trace_printk("reading %lld mC", 16, t);
	hour.readings++;
	if (t > hour.max_milli_c || hour.readings == 1)
		hour.max_milli_c = t;
	if (t > threshold) {
		hour.hot++;
		struct reading *r = bpf_ringbuf_reserve(&hot_readings, sizeof(*r), 0);
		if (r) {
			r->t_ns = ctx->now_ns;
			r->milli_c = t;
			bpf_ringbuf_submit(r, 0);
		}
	}
	if (ctx->expirations % 60 == 0) {
		hour.t_ns = ctx->now_ns;
		bpf_perf_event_output(ctx, &hourly, BPF_F_CURRENT_CPU, &hour, sizeof(hour));
		__builtin_memset(&hour, 0, sizeof(hour));
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

APP = {
    "version": 1, "name": "temp_watch", "description": "traces readings, streams hot ones",
    "object": "temp_watch.o", "programs": {"timer": "timer"},
    "timers": [{"id": 0, "period": "1m"}], "budget": 4096,
    "sim": {"sensors": [{"id": 0, "name": "temperature", "model": "random_walk", "mean": 22000,
                         "step_size": 300, "diurnal": 6000}]},
}


def hms(t_ns: int) -> str:
    s = t_ns // 1_000_000_000
    return "%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two hours instead of a day")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iotbpf-bcc-") as tmp:
        app = Path(tmp) / "temp_watch"
        app.mkdir()
        (app / "temp_watch.c").write_text(WATCH_C)
        (app / "app.json").write_text(json.dumps(dict(APP, source="temp_watch.c"), indent=2))
        build_app(app)  # clang-19 -O2 -g -target bpf

        node = iotbpf.Node(app, seed=3)
        traced = []
        hot = []
        hours = []

        def on_trace(kind, t_ns, app_name, text):  # bcc: b.trace_print()
            traced.append(text)
            if len(traced) <= 3:
                print("%s %s %s: %s" % (hms(t_ns), app_name, kind, text))

        def on_hot(data):  # bcc: b["hot_readings"].open_ring_buffer(cb)
            t_ns, milli_c = struct.unpack("<Qq", data)
            hot.append(milli_c)
            if len(hot) <= 3:
                print("%s ring buffer: hot reading %.2f C" % (hms(t_ns), milli_c / 1000))

        def on_hour(cpu, data):  # bcc: b["hourly"].open_perf_buffer(cb)
            t_ns, max_mc, readings, n_hot = struct.unpack("<QqII", data)
            hours.append(readings)
            print("%s perf buffer (cpu %d): hour of %d readings, max %.2f C, %d hot"
                  % (hms(t_ns), cpu, readings, max_mc / 1000, n_hot))

        node.open_trace(on_trace)
        node.maps["hot_readings"].open_ring_buffer(on_hot)
        node.maps["hourly"].open_perf_buffer(on_hour, lost=lambda cpu, n: print("lost %d" % n))
        duration = "2h" if args.quick else "1d"
        node.simulate(duration)
        left = node.maps["hot_readings"].poll(on_hot) + node.maps["hourly"].poll(on_hour)

        print("%s simulated: %d trace lines, %d hot readings, %d hourly summaries, %d left over"
              % (duration, len(traced), len(hot), len(hours), left))
        assert len(traced) == (119 if args.quick else 1439)  # the timer at the very end does not run
        assert sum(hours) == 60 * len(hours) and left == 0
        assert node.maps["hour"]["readings"] == len(traced) - sum(hours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
