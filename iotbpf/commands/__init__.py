"""CLI subcommands: one module each, registered in iotbpf.cli.COMMANDS."""
