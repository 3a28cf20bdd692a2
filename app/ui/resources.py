"""Files in `resources/`, found beside the package or inside a frozen bundle."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

import app


def resources_dir() -> Path:
    """`resources/` of the source tree, or of the PyInstaller bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(app.__file__).resolve().parent.parent / "resources"


@cache
def app_icon() -> QIcon:
    """The application icon (resources/icon.svg)."""
    return QIcon(str(resources_dir() / "icon.svg"))


def standard_icon(kind: QStyle.StandardPixmap) -> QIcon:
    """One of the style's built-in icons (warning, information…)."""
    return QApplication.style().standardIcon(kind)
