"""Record or check the simulation outputs that a refactor must leave byte-identical.

    python bench/outputs.py --record [DIR]   write every output to DIR (default tests/data/outputs)
    python bench/outputs.py --check  [DIR]   compare; print the first differing line of each; exit 1

The list is the one bench/RESULTS.md uses for "output unchanged": simulate text and JSON for
sensor_node, rx_filter and app_monitor, the policy comparison and the dvfs policy.
"""

import argparse
import difflib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DIR = os.path.join(REPO, "tests", "data", "outputs")

CASES = {
    "sensor_node_60d.txt": ["simulate", "sensor_node", "--duration", "60d", "--seed", "3"],
    "sensor_node_30d.json": ["simulate", "sensor_node", "--duration", "30d", "--seed", "3", "--json"],
    "sensor_node_compare_20d.txt": ["simulate", "sensor_node", "--duration", "20d", "--seed", "3", "--compare",
                                    "batching,duty_cycle,always_on,dvfs,race,oracle"],
    "sensor_node_dvfs_7d.json": ["simulate", "sensor_node", "--duration", "7d", "--seed", "3", "--policy", "dvfs",
                                 "--json"],
    "rx_filter_3d.json": ["simulate", "rx_filter", "--duration", "3d", "--seed", "3", "--json"],
    "app_monitor_3d.json": ["simulate", "app_monitor", "--duration", "3d", "--seed", "3", "--json"],
}


def produce(args: list) -> str:
    """The command's standard output (run from the repo, this tree's iotbpf first on the path)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "iotbpf", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit("error: iotbpf %s failed: %s" % (" ".join(args), proc.stderr.strip()[-400:]))
    return proc.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", action="store_true", help="write the outputs")
    mode.add_argument("--check", action="store_true", help="compare with the stored outputs")
    parser.add_argument("dir", nargs="?", default=DEFAULT_DIR, help="where the outputs are (default: %(default)s)")
    parser.add_argument("--only", help="one case name")
    opts = parser.parse_args(argv)
    names = [opts.only] if opts.only else sorted(CASES)
    differing = 0
    for name in names:
        if name not in CASES:
            raise SystemExit("error: no case %r (cases: %s)" % (name, ", ".join(sorted(CASES))))
        out = produce(CASES[name])
        path = os.path.join(opts.dir, name)
        if opts.record:
            os.makedirs(opts.dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(out)
            print("recorded %s" % name)
            continue
        try:
            with open(path) as f:
                stored = f.read()
        except OSError as exc:
            raise SystemExit("error: cannot read %s: %s" % (path, exc.strerror)) from None
        if out == stored:
            print("same      %s" % name)
        else:
            differing += 1
            diff = list(difflib.unified_diff(stored.splitlines(), out.splitlines(), "stored", "now", lineterm="", n=0))
            print("DIFFERENT %s\n  %s" % (name, "\n  ".join(diff[2:8])))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
