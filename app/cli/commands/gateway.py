"""`position-sync gateway [--port N] [--scenario NAME]`: the TWS simulator alone, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from app.cli.exit_codes import ExitCode


class _ScenarioHelp(argparse.HelpFormatter):
    """Names the scenarios in `--scenario`'s help only when help is shown: listing them imports
    the simulator (app.sim, ~40 ms on the benchmark machine), which every command — the window's
    start included — would otherwise pay while building its parser."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is not None and "{scenarios}" in text:
            from app.sim.scenarios import scenario_names

            text = text.replace("{scenarios}", ", ".join(scenario_names()))
        return text


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `gateway` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "gateway",
        formatter_class=_ScenarioHelp,
        help="run the embedded TWS simulator on 127.0.0.1 until Ctrl-C",
        description=(
            "Serve the TWS socket protocol (server version 176) from the built-in simulator, "
            "so ib_insync, ib_async or ibapi clients can connect to it like to TWS."
        ),
    )
    add_common(parser)
    parser.add_argument(
        "--scenario",
        metavar="NAME",
        default="demo",
        help="broker set-up: {scenarios}, or scale-N (default: %(default)s)",
    )
    parser.set_defaults(handler=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    """Run until interrupted; exit 2 for a bad scenario or a non-loopback host."""
    from app.sim.runner import SimulatorThread
    from app.sim.scenarios import get_scenario

    port = int(getattr(args, "port", 7497))
    host = str(getattr(args, "host", None) or "127.0.0.1")
    try:
        scenario = get_scenario(args.scenario)
        thread = SimulatorThread(scenario, port=port, host=host)
    except (KeyError, ValueError) as exc:
        print(f"position-sync gateway: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE)
    try:
        thread.start()
    except (RuntimeError, TimeoutError) as exc:
        cause = exc.__cause__ or exc
        print(f"position-sync gateway: cannot listen on {host}:{port}: {cause}", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    # "Ctrl-C to stop" holds even when started from a non-interactive shell's background job,
    # which inherits SIGINT ignored (Python then never raises KeyboardInterrupt); SIGTERM is a
    # clean stop too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(ValueError, AttributeError):  # not on Windows / not main thread
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        # Announced inside the try: a Ctrl-C right after the announcement is a clean stop too.
        print(
            f"TWS simulator ({scenario.name}) listening on {host}:{thread.port}; Ctrl-C to stop",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        thread.stop()
    return int(ExitCode.OK)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
