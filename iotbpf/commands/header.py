"""`iotbpf header`: generate apps/include/iotbpf.h from the hook, helper and well-known-map tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iotbpf.ebpf.errors import IotbpfError, RuntimeFailure
from iotbpf.kernel.header import generate

NAME = "header"
HELP = "generate the C header (iotbpf.h) that eBPF apps include"
EXAMPLE = """iotbpf header -o apps/include/iotbpf.h
iotbpf header --check -o apps/include/iotbpf.h
iotbpf header > iotbpf.h"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if FILE differs from the generated header")


def run(args: argparse.Namespace) -> int:
    text = generate()
    if args.check:
        if not args.output:
            raise IotbpfError("--check needs -o FILE (the header to compare)")
        path = Path(args.output)
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else None
        except UnicodeDecodeError:
            current = None  # not text, so not the header: stale
        if current != text:
            raise RuntimeFailure("%s is stale: run `iotbpf header -o %s`" % (path, path))
        print("%s is up to date" % path)
        return 0
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
