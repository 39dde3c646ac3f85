"""The in-kernel collector's cost and accuracy against the /proc monitor, on a context-switch-heavy
machine: `python bench/kernel_monitor.py [SECONDS]` (root; default 10 s per backend).

A ping-pong of two processes over pipes (tests/kernel_oracle/data/workload.c `switch`) runs during
both monitors; each runs `iotbpf monitor --backend B --duration SECONDS --interval 1s --json`. Printed:
the sched_switch rate, the reader's CPU per sample, the collector's BPF program time (BPF run-time
statistics) and their sum as % of one core, and what each backend saw of the ping-pong.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ctxt():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                return int(line.split()[1])
    return 0


def main() -> int:
    seconds = sys.argv[1] if len(sys.argv) > 1 else "10"
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None or os.geteuid() != 0:
        print("error: needs root and clang-19", file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp()
    exe = os.path.join(folder, "iotbpf_pingpong")
    subprocess.run([clang, "-O1", "-o", exe, os.path.join(REPO, "tests", "kernel_oracle", "data", "workload.c")],
                   check=True)
    env = dict(os.environ, PYTHONPATH=REPO)
    rows = []
    for pace, backend in (("0", "proc"), ("0", "ebpf"), ("40", "proc"), ("40", "ebpf")):
        load = subprocess.Popen([exe, "switch", "100000000", pace], stdout=subprocess.DEVNULL)
        time.sleep(1.0)
        c0, t0 = ctxt(), time.monotonic()
        out = subprocess.run([sys.executable, "-m", "iotbpf", "monitor", "--backend", backend, "--duration",
                              seconds + "s", "--interval", "1s", "--json"], capture_output=True, text=True, env=env,
                             cwd=REPO)
        rate = (ctxt() - c0) / (time.monotonic() - t0)
        load.kill()
        load.wait()
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return 1
        report = json.loads(out.stdout)
        mon = report["monitor"]
        apps = dict((a["app"], a) for a in report["apps"])
        seen = apps.get("iotbpf_pingpong", {"cpu_s": 0.0, "wakeups": 0})
        rows.append((backend, rate, mon))
        print("pace %3s us %-5s %8.0f switches/s | reader %.2f ms/sample = %.3f %% | BPF programs %s | total %s | "
              "ping-pong %.2f CPU s, %d wakeups" % (
                  pace, backend, rate, mon["cpu_s_per_sample"] * 1000, mon["percent_at_1s_sampling"],
                  "-" if mon.get("kernel_percent_of_one_core") is None
                  else "%.3f %%" % mon["kernel_percent_of_one_core"],
                  "%.3f %%" % mon.get("total_percent_of_one_core", mon["percent_at_1s_sampling"]),
                  seen["cpu_s"], seen["wakeups"]))
    shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
