"""Subcommands. Each module exposes `register(subparsers, add_common)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Register = Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]


def _registry() -> list[Register]:
    from app.cli.commands import db, export, flex, gateway, gui, positions, serve, status, sync

    return [
        gui.register,
        sync.register,
        serve.register,
        status.register,
        positions.register,
        gateway.register,
        export.register,
        flex.register,
        db.register,
    ]


REGISTRY: list[Register] = _registry()


def default_command(args: argparse.Namespace) -> int:
    """The bare `position-sync [--demo]`: the window."""
    from app.cli.commands import gui

    return gui.run_gui(args)
