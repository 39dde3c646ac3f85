"""The in-kernel collector's cost against the /proc monitor's, on the same context-switch-heavy
workload in the same run: `python bench/kernel_monitor.py [SECONDS] [ROUNDS]` (root; default 10 s per
monitor run, 1 round).

Workload: two processes ping-pong one byte over pipes (tests/kernel_oracle/data/workload.c `switch`),
unpaced (~150k context switches/s here) and with a 40 us pause per round trip (~25k/s). For each
load ONE workload process runs, and the two backends are measured on it back to back (proc, ebpf,
then again ebpf, proc in the next round so drift cancels): each run is `iotbpf monitor --backend B
--duration SECONDS --interval 1s --json`. Cost, as % of one core at 1 s sampling:

- reader: the monitor's own CPU per sample (thread CPU time, user + system, of sample(): it includes
  the kernel time of its syscalls, so the eBPF task iterator and map reads it triggers are in it);
- BPF: the collector's event-driven programs' run time per second, from the kernel's own accounting
  (BPF_ENABLE_STATS: run_time_ns / run_cnt per program, as `bpftool prog show` prints with
  `sysctl kernel.bpf_stats_enabled=1`); the iterator program is excluded (it is in the reader's time).

Printed: one line per run and a table (markdown) of both backends per load.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADS = (("ping-pong, unpaced", "0"), ("ping-pong, 40 us pause", "40"))


def ctxt() -> int:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                return int(line.split()[1])
    return 0


def run_monitor(backend: str, seconds: str, env: dict) -> tuple:
    c0, t0 = ctxt(), time.monotonic()
    out = subprocess.run([sys.executable, "-m", "iotbpf", "monitor", "--backend", backend, "--duration",
                          seconds + "s", "--interval", "1s", "--json"], capture_output=True, text=True, env=env,
                         cwd=REPO)
    rate = (ctxt() - c0) / (time.monotonic() - t0)
    if out.returncode != 0:
        raise SystemExit("error: monitor --backend %s failed: %s" % (backend, out.stderr.strip()))
    doc = json.loads(out.stdout)
    mon = doc["run"]["monitor"]
    apps = dict((a["app"], a) for a in doc["apps"])
    seen = apps.get("iotbpf_pingpong", {"cpu_s": 0.0, "wakeups": 0})
    reader = mon["percent_at_1s_sampling"]
    kernel = mon.get("kernel_percent_of_one_core")
    return {"backend": backend, "rate": rate, "reader": reader, "kernel": kernel,
            "total": reader + (kernel or 0.0), "programs": mon.get("kernel_programs", {}),
            "pingpong_cpu_s": seen["cpu_s"], "pingpong_wakeups": seen["wakeups"]}


def main() -> int:
    seconds = sys.argv[1] if len(sys.argv) > 1 else "10"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None or os.geteuid() != 0:
        print("error: needs root and clang-19", file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp()
    exe = os.path.join(folder, "iotbpf_pingpong")
    subprocess.run([clang, "-O1", "-o", exe, os.path.join(REPO, "tests", "kernel_oracle", "data", "workload.c")],
                   check=True)
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-c", "from iotbpf.platforms.kernel.collector import build; build()"],
                   check=True, env=env)  # compile the collector before timing anything
    table = []
    try:
        for label, pace in LOADS:
            load = subprocess.Popen([exe, "switch", "1000000000", pace], stdout=subprocess.DEVNULL)
            try:
                time.sleep(1.0)
                runs = {"proc": [], "ebpf": []}
                for r in range(rounds):
                    for backend in (("proc", "ebpf") if r % 2 == 0 else ("ebpf", "proc")):
                        row = run_monitor(backend, seconds, env)
                        runs[backend].append(row)
                        progs = " ".join("%s %.0f ns x %.0f/s" % (name, p["ns_per_run"], p["runs_per_s"])
                                         for name, p in sorted(row["programs"].items()) if p["runs_per_s"] >= 1)
                        print("%-24s %-4s %7.0f switches/s | reader %.3f %% | BPF %s | total %.3f %% | "
                              "ping-pong %.2f CPU s, %d switches %s" % (
                                  label, backend, row["rate"], row["reader"],
                                  "-" if row["kernel"] is None else "%.3f %%" % row["kernel"], row["total"],
                                  row["pingpong_cpu_s"], row["pingpong_wakeups"], progs), flush=True)
            finally:
                load.kill()
                load.wait()
            for backend in ("proc", "ebpf"):
                rows = runs[backend]
                n = float(len(rows))
                kernel = [r["kernel"] for r in rows if r["kernel"] is not None]
                table.append((label, backend, sum(r["rate"] for r in rows) / n, sum(r["reader"] for r in rows) / n,
                              sum(kernel) / len(kernel) if kernel else None, sum(r["total"] for r in rows) / n))
    finally:
        shutil.rmtree(folder)
    print("\n| load | backend | context switches/s | reader (Python) | BPF programs | total, % of one core |")
    print("|---|---|---:|---:|---:|---:|")
    for label, backend, rate, reader, kernel, total in table:
        print("| %s | %s | %s | %.3f %% | %s | **%.3f %%** |" % (
            label, backend, "{:,.0f}".format(rate).replace(",", " "), reader,
            "-" if kernel is None else "%.3f %%" % kernel, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
