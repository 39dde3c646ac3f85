#!/usr/bin/env bash
# Machine instructions (valgrind's Ir) that simulating DURATION of sensor_node costs, minus a
# one-minute run (start-up, imports, compiling): a count that does not move with the host's
# load, for A/B comparisons of the runtime's speed (times vary +-10 % on a shared VM).
#   bench/instructions.sh [DURATION] [SOURCE_DIR]     e.g.  bench/instructions.sh 10d
# valgrind must be installed; about 20 s for 10 days. Counts differ across CPython builds.
set -euo pipefail
duration="${1:-10d}"
source_dir="${2:-$(cd "$(dirname "$0")/.." && pwd)}"
command -v valgrind >/dev/null || { echo "error: valgrind is not installed" >&2; exit 2; }
[ -d "$source_dir/iotbpf" ] || { echo "error: $source_dir has no iotbpf package" >&2; exit 2; }
python_bin="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
count() {
    if ! (cd /tmp && PYTHONPATH="$source_dir" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            --log-file="$log" "$python_bin" -c "import sys
try:
    from iotbpf.api import Node
    node = Node('sensor_node', seed=1)
    node.build()
    node.simulate(sys.argv[1], samples=0)
except Exception as exc:
    sys.exit('error: simulating %r of sensor_node: %s' % (sys.argv[1], exc))" "$1"); then
        exit 2
    fi
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
}
total=$(count "$duration")
base=$(count 1m)
echo "sensor_node $duration: $((total - base)) instructions ($source_dir)"
