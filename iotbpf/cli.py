"""The ``iotbpf`` command line: argparse front end, the only place that wires layers together. A
subcommand is a module ``iotbpf.commands.<name>`` with NAME, HELP, EXAMPLE, ``add_arguments(parser)``
and ``run(args) -> int``, listed in COMMANDS; errors reach the user as one line ``error: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from iotbpf import __version__
from iotbpf.ebpf.errors import IotbpfError

# Module names under iotbpf.commands, in the order `iotbpf --help` lists them.
COMMANDS: tuple[str, ...] = (
    "run",
    "verify",
    "asm",
    "disasm",
    "conformance",
    "pack", "cbpf", "map",
    "header", "build", "simulate",
    "monitor", "node",
    "listen", "plot", "schema",
    "deploy", "link",
    "bench",
)


class UsageError(Exception):
    """Raised instead of argparse's print-usage-and-exit, so main() prints one line."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``error: ...`` with exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples keep their lines; every option with a default says it (unless its help already does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" not in text and "%(default)" not in text and action.option_strings
                and default not in (None, False, argparse.SUPPRESS) and not isinstance(default, list)):
            text += " (default: %(default)s)"
        return text


def build_parser() -> Parser:
    """Build the full parser with every registered subcommand."""
    parser = Parser(
        prog="iotbpf",
        description="Run and measure energy-aware eBPF event handlers on IoT nodes and mobile devices.",
        epilog="example:\n  iotbpf simulate sensor_node --duration 1y\n\n"
        "Run 'iotbpf COMMAND --help' for a command's options and an example.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version="iotbpf " + __version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module_name in COMMANDS:
        module = importlib.import_module("iotbpf.commands." + module_name)
        sub = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            epilog="example:\n" + "\n".join("  " + line for line in module.EXAMPLE.strip().splitlines()),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(sub)
        if sub.get_default("handler") is None:
            sub.set_defaults(handler=module.run)
    return parser


def reference_markdown() -> str:
    """The CLI reference (docs/cli.md), generated from the parsers so it can never drift."""
    import os

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width for a stable file
    try:
        return _reference_markdown()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _reference_markdown() -> str:
    parser = build_parser()
    parts = ["# CLI reference", "", "Generated from the argument parsers by `iotbpf.cli.reference_markdown()`;",
             "a test fails when this file is stale.", "", "```text", parser.format_help().rstrip(), "```", ""]
    action = next(a for a in parser._actions if a.dest == "command")
    for name, sub in action.choices.items():
        parts += ["## iotbpf %s" % name, "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 'no'/failed, 2 bad usage or input)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        code = handler(args)
        return 0 if code is None else int(code)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except IotbpfError as exc:
        _error(str(exc))
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        _error(_describe_os_error(exc))
        return 2
    except Exception as exc:  # the last line of defence: never a traceback for the user
        _error("internal error: %s: %s (please report this)" % (type(exc).__name__, exc))
        return 1


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return "%s: %s" % (exc.strerror or exc, exc.filename)
    return str(exc)


def _error(message: str) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if first_line.startswith("error: "):
        first_line = first_line[len("error: "):]
    sys.stderr.write("error: " + first_line + "\n")


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
