"""Allow ``python -m iotbpf``."""

import sys

from iotbpf.cli import main

sys.exit(main())
