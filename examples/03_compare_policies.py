"""Compare radio/CPU scheduler policies for one app against the offline oracle.

Every policy runs the same app with the same seed (so the same sensor values, packets and
deadlines); the oracle replays the recorded events knowing the future, which gives the minimum
energy any policy could reach. "x oracle" is each policy's average power over the oracle's.

    python examples/03_compare_policies.py              # 30 days of sensor_node
    python examples/03_compare_policies.py --quick      # 1 day
    python examples/03_compare_policies.py --app rx_filter --policies always_on,duty_cycle
"""

import argparse
import sys

import iotbpf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="simulate 1 day instead of 30")
    parser.add_argument("--app", default="sensor_node")
    parser.add_argument("--board", default=None)
    parser.add_argument("--policies", default="always_on,duty_cycle,batching,dvfs,race")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    days = 1 if args.quick else 30
    rows = iotbpf.compare(args.policies, app=args.app, board=args.board, days=days, seed=args.seed)
    print("%s, %d days, seed %d" % (args.app, days, args.seed))
    print(rows.text())
    live = [r for r in rows if r["policy"] != "oracle"]
    best = min(live, key=lambda r: r["energy_j"])
    worst = max(live, key=lambda r: r["energy_j"])
    print("best policy: %s, %.4g J; %.1f x less energy than %s" % (
        best["policy"], best["energy_j"], worst["energy_j"] / best["energy_j"], worst["policy"]))
    if best["ratio_to_oracle"] is not None:
        print("it is within %.2f %% of the oracle's minimum" % (100 * (best["ratio_to_oracle"] - 1)))
    missed = [r["policy"] for r in live if r["deadline_misses"]]
    print("policies that missed deadlines: %s" % (", ".join(missed) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
