"""`iotbpf schema [KIND]`: print the JSON Schema of a report kind, or check a document against its own."""

from __future__ import annotations

import argparse
import json

from iotbpf.report import schema

NAME = "schema"
HELP = "print the JSON Schema of a report kind (node-result, comparison, fleet, monitor, app-usage)"
EXAMPLE = """iotbpf schema                   # the kinds, their schema names and files
iotbpf schema node-result       # what simulate --json / --report FILE.json write
iotbpf schema --validate run.json  # validate a saved report against its shipped schema"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=schema.KINDS, metavar="KIND",
                        help="one of: " + ", ".join(schema.KINDS) + " (default: list them)")
    parser.add_argument("--validate", metavar="FILE.json", help="validate a saved report document")


def run(args: argparse.Namespace) -> int:
    if args.validate:
        from iotbpf.report.export import load_report

        doc = load_report(args.validate)
        print("%s: valid %s version %d" % (args.validate, doc["schema"], doc["version"]))
        return 0
    if args.kind:
        print(json.dumps(schema.load_schema(args.kind), indent=2))
        return 0
    for kind in schema.KINDS:
        print("%-12s %-22s v%d  %s" % (kind, schema.schema_name(kind), schema.VERSION, schema.schema_path(kind)))
    return 0
