"""Subcommands. Each module exposes `register(subparsers, add_common)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Register = Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]


def _registry() -> list[Register]:
    from app.cli.commands import db, gateway, positions, status, sync

    return [sync.register, status.register, positions.register, gateway.register, db.register]


REGISTRY: list[Register] = _registry()


def default_command(args: argparse.Namespace) -> int:
    """The bare `position-sync`.

    Until the window lands (issue 5) this is the headless equivalent: with `--demo`, keep
    syncing from the demo gateway and print every run (`sync --demo --watch`); without it,
    the cache's `status`.
    """
    from app.cli.commands import status, sync

    if getattr(args, "demo", False):
        args.watch = True
        return sync.run_sync(args)
    return status.run_status(args)
