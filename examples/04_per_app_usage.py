"""Watch this machine's per-app CPU, wakeups, I/O and energy, sampled from /proc like `iotbpf monitor`.

Processes are grouped into apps (by executable by default); each app's CPU time is priced with a
board's CPU power model (default: the sourced Raspberry Pi 4 model), or scaled to a measured
total when RAPL or a battery's power_supply can be read. To have something to find, the example
starts a busy child process ("--no-load" to skip) and checks that the monitor attributes CPU
time to it.

    python examples/04_per_app_usage.py                # 5 samples, 1 s apart
    python examples/04_per_app_usage.py --quick        # 2 samples, 0.5 s apart
    python examples/04_per_app_usage.py --group-by uid --board rpi_zero2w
Linux only.
"""

import argparse
import os
import subprocess
import sys

from iotbpf.platforms.linux import LinuxMonitor, cpu_model_for_board, format_table, run_monitor

BUSY_LOOP = "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 samples 0.5 s apart")
    parser.add_argument("--board", default="rpi4", help="board whose CPU model prices CPU time")
    parser.add_argument("--group-by", default="exe", choices=("exe", "comm", "uid", "cgroup"))
    parser.add_argument("--top", type=int, default=8, help="apps to show per interval")
    parser.add_argument("--no-load", action="store_true", help="do not start the busy child process")
    args = parser.parse_args(argv)
    if not os.path.isdir("/proc/self"):
        print("this example needs Linux (/proc)")
        return 2

    interval_s, samples = (0.5, 2) if args.quick else (1.0, 5)
    monitor = LinuxMonitor(cpu_model_for_board(args.board), group_by=args.group_by)
    print("CPU model: %s" % monitor.cpu_model.name)
    child = None
    if not args.no_load:
        child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        print("started a busy child process, pid %d" % child.pid)
    try:
        def show(interval):
            print(format_table(interval, monitor, top=args.top))

        run_monitor(monitor, interval_s, interval_s * samples, on_interval=show)
        child_cpu_s = monitor.process_cpu_s(child.pid) if child is not None else None
    finally:
        if child is not None:
            child.kill()
            child.wait()

    summary = monitor.summary()
    print("over %.1f s: model estimate %.3f J%s" % (
        summary["seconds"], summary["estimate_j"],
        "" if summary["measured_j"] is None else ", measured %.3f J" % summary["measured_j"]))
    print("top apps by energy:")
    for app in summary["apps"][:5]:
        print("  %-28s cpu %6.2f s  wakeups %6d  energy %.3f J" % (app["app"][:28], app["cpu_s"], app["wakeups"],
                                                                  app["energy_j"]))
    if child is not None:
        print("the busy child used %.2f s of CPU" % child_cpu_s)
        assert child_cpu_s and child_cpu_s > 0.05, "the monitor did not see the busy child"
    print("the monitor itself: %.2f ms of CPU per sample" % (1000 * summary["monitor"]["cpu_s_per_sample"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
