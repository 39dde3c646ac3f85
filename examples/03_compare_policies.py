"""Compare radio/CPU scheduler policies for one app against the offline oracle.

Every policy runs the same app with the same seed (so the same sensor values, packets and
deadlines); the oracle replays the recorded events knowing the future, which gives the minimum
energy any policy could reach. "power/oracle" is each policy's average power over the oracle's: a
policy whose battery dies stops early, so its energy covers a shorter span ("over", "died").

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
    live = [r for r in rows.policies if not r["oracle"]]   # each over its own span, with avg power
    best = min(live, key=lambda r: r["avg_power_w"])
    worst = max(live, key=lambda r: r["avg_power_w"])
    print("best policy: %s, %.4g uW on average; %.1f x less power than %s" % (
        best["policy"], best["avg_power_w"] * 1e6, worst["avg_power_w"] / best["avg_power_w"], worst["policy"]))
    if best["power_ratio_to_oracle"] is not None:
        print("it is within %.2f %% of the oracle's minimum" % (100 * (best["power_ratio_to_oracle"] - 1)))
    died = ["%s (day %.1f)" % (r["policy"], r["died_s"] / 86400) for r in live if r["died_s"] is not None]
    print("batteries that died during the run: %s" % (", ".join(died) or "none"))
    missed = [r["policy"] for r in live if r["deadline_misses"]]
    print("policies that missed deadlines: %s" % (", ".join(missed) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
