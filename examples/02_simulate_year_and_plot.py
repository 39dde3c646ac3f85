"""Simulate a battery-powered sensor node for a year of virtual time and plot where the energy goes.

Runs the bundled sensor_node app (a C handler reading a sensor every minute and batching
readings for the radio) on the nRF52840 DK's energy model, then prints the energy, the battery's
predicted lifetime, the per-app attribution and a few of the app's own counters, and saves a
plot (power by component, states, battery, energy per app).

    python examples/02_simulate_year_and_plot.py                 # 365 days, sensor_node_year.png
    python examples/02_simulate_year_and_plot.py --quick         # 7 days, sensor_node_week.png
    python examples/02_simulate_year_and_plot.py --board esp32_devkit --plot esp32.png
"""

import argparse
import sys

import iotbpf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="simulate 7 days instead of 365")
    parser.add_argument("--app", default="sensor_node", help="bundled app name or app folder")
    parser.add_argument("--board", default=None, help="board (default: the app's)")
    parser.add_argument("--policy", default=None, help="scheduler policy (default: the app's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", default=None,
                        help="image to write (.png/.svg/.pdf; default: APP_year.png, or APP_week.png with --quick)")
    args = parser.parse_args(argv)

    days = 7 if args.quick else 365
    plot = args.plot or "%s_%s.png" % (args.app.rstrip("/").split("/")[-1], "week" if args.quick else "year")
    node = iotbpf.Node(args.app, board=args.board, policy=args.policy, seed=args.seed)
    result = node.simulate(days=days)

    print("%s on %s, policy %s, %d days simulated, %d events" % (
        args.app, result.summary["energy"]["board"], result.summary["energy"]["policy"], days,
        result.events_handled))
    print("energy used:       %.3f J (average current %.2f uA)" % (result.energy, result.average_current_a * 1e6))
    battery = result.battery
    print("battery:           %.1f %% left of %.0f mAh (%s model)" % (
        100 * battery["soc"], battery["capacity_mah"], battery["model"]))
    if result.lifetime_days is None:
        print("lifetime:          unlimited")
    else:
        print("lifetime:          %.0f days (%.1f years) predicted" % (result.lifetime_days,
                                                                       result.lifetime_days / 365))
    print("energy per app:")
    for app, joules in result.per_app.items():
        print("  %-12s %10.4f J  %5.1f %%" % (app, joules, 100 * joules / result.energy))
    if "stats" in node.maps:
        stats = node.maps["stats"]
        print("the app's own counters: %d readings, %d batches sent, %d alarms" % (
            stats["count"], stats["batches_sent"], stats["alarms"]))
    result.plot(plot)
    print("plot saved to %s" % plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
