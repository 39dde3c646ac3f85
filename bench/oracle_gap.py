"""The oracle's gap (feasible schedule vs certified lower bound) on dense traces, where clusters
are too big to search exactly: 16 random traces of 12-24 packets 1-8 ms apart, 0-3 listen windows
and receptions, on four boards. Prints one line per trace and the mean and largest gap.

    python bench/oracle_gap.py
"""

import random
import statistics

from iotbpf.kernel.scheduler import make_scheduler, oracle, run_trace

MS = 1000000
NS = 1000000000


def drive(trace, board, end, listens, rx):
    """batching on (t, nbytes, relative deadline) packets, (t, duration) listens, (t, nbytes) arrivals."""
    sched = make_scheduler("batching", board)
    sched.boot(0)
    return run_trace(sched, end, tx=trace, listens=listens, rx=rx)


def main() -> None:
    rng = random.Random(5)
    gaps = []
    for board in ("nrf52840_dk", "telosb", "esp32_devkit", "lora_node"):
        for case in range(4):
            n = 12 + 4 * case
            t = 0
            trace = []
            for _ in range(n):
                t += rng.randint(1, 8) * MS
                trace.append((t, rng.randint(10, 120), rng.randint(20, 200) * MS))
            listens = [(rng.randint(0, t // MS) * MS, 5 * MS) for _ in range(case)]
            rx = [(rng.randint(0, t // MS) * MS, 30) for _ in range(case)]
            end = t + 2 * NS
            info = oracle(drive(trace, board, end, listens, rx), end).oracle_info
            gaps.append(info["gap"])
            print("%-14s packets=%2d windows=%d exact=%s gap=%.2f%%" % (board, n, case, info["exact"],
                                                                       100 * info["gap"]))
    print("mean gap %.2f%%  max %.2f%%" % (100 * statistics.mean(gaps), 100 * max(gaps)))


if __name__ == "__main__":
    main()
