"""`position-sync` argument parsing and dispatch (exit codes per DESIGN.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app import __version__
from app.cli.collector import claim_process, collector_paused
from app.cli.exit_codes import ExitCode


def _common(parser: argparse.ArgumentParser) -> None:
    """Options valid after any command and on the bare `position-sync`."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="database URL or path (default: the user data folder)",
    )
    group.add_argument("--host", metavar="H", default=argparse.SUPPRESS, help="TWS host")
    group.add_argument(
        "--port",
        metavar="P",
        type=int,
        default=argparse.SUPPRESS,
        help="TWS API port (for `gateway`: the port to listen on)",
    )
    group.add_argument(
        "--client-id", metavar="N", type=int, default=argparse.SUPPRESS, help="TWS API client id"
    )
    group.add_argument(
        "--account", metavar="A", default=argparse.SUPPRESS, help="limit to one account code"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging (-vv for debug)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full parser; subcommands register themselves from app.cli.commands."""
    from app.cli import commands

    parser = argparse.ArgumentParser(
        prog="position-sync",
        description="A durable local ledger of Interactive Brokers positions.",
    )
    parser.add_argument("--version", action="version", version=f"position-sync {__version__}")
    parser.add_argument(
        "--demo", action="store_true", help="run on the embedded demo gateway (no TWS needed)"
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in commands.REGISTRY:
        register(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    if argv is None:  # the console script, `python -m app`, the bundle: a process of its own
        claim_process()
    with collector_paused():  # every command's modules: see app.cli.collector
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code or 0)
    verbosity = getattr(args, "verbose", 0) or 0
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbosity, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # ib_insync logs every refused connection and farm notice at ERROR/INFO; the CLI already
    # explains the outcome in one line, so its chatter shows only with -vv.
    logging.getLogger("ib_insync").setLevel(logging.DEBUG if verbosity >= 2 else logging.CRITICAL)
    handler = getattr(args, "handler", None)
    if handler is None:
        from app.cli.commands import default_command

        handler = default_command
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return int(ExitCode.UNEXPECTED)


if __name__ == "__main__":
    sys.exit(main())
