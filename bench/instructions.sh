#!/usr/bin/env bash
# Machine instructions (valgrind's Ir) that simulating DURATION of sensor_node costs, minus a
# one-minute run (start-up, imports, compiling): a count that does not move with the host's
# load, for A/B comparisons of the runtime's speed (times vary +-10 % on a shared VM).
#   bench/instructions.sh [DURATION] [SOURCE_DIR]     e.g.  bench/instructions.sh 10d
# valgrind must be installed; about 20 s for 10 days. Counts differ across CPython builds.
set -euo pipefail
duration="${1:-10d}"
source_dir="${2:-$(cd "$(dirname "$0")/.." && pwd)}"
python_bin="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
count() {
    (cd /tmp && PYTHONPATH="$source_dir" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$python_bin" -c "import sys
from iotbpf.api import Node
node = Node('sensor_node', seed=1)
node._build()
node.simulate(sys.argv[1], samples=0)" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
}
total=$(count "$duration")
base=$(count 1m)
echo "sensor_node $duration: $((total - base)) instructions ($source_dir)"
