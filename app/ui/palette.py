"""Colours for P&L, discrepancy highlights and the banner, chosen for the palette in use.

Every text colour here keeps WCAG AA contrast (4.5:1) on each background it is drawn on — the
table's base and alternate rows and the highlight backgrounds — under the light and the dark
palette (tests/ui/test_palette.py checks it). Under a dark system palette the light colours
were unreadable: dark green on charcoal, pastel highlights with white text.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette


@dataclass(frozen=True, slots=True)
class Colours:
    """One palette's colours (CSS hex)."""

    dark: bool
    gain: str
    loss: str
    estimated_gain: str
    estimated_loss: str
    unknown: str
    missing_background: str
    differs_background: str
    not_cached_background: str
    banner: dict[str, tuple[str, str, str]]
    """Banner level → (background, text, border)."""
    note: str
    """Secondary text (hints under a form field)."""


LIGHT = Colours(
    dark=False,
    gain="#156b32",
    loss="#b02a1e",
    # An estimate keeps the gain/loss hue, in another shade (and italic, with "≈").
    estimated_gain="#386b38",
    estimated_loss="#974006",
    unknown="#5c5c5c",
    missing_background="#fde2e1",
    differs_background="#fff1c2",
    not_cached_background="#dbe9ff",
    banner={
        "live": ("#e6f4ea", "#1b5e20", "#81c995"),
        "syncing": ("#e8f0fe", "#174ea6", "#8ab4f8"),
        "offline": ("#f1f3f4", "#3c4043", "#bdc1c6"),
        "warning": ("#fef7e0", "#8a4b00", "#fdd663"),
        "error": ("#fce8e6", "#a50e0e", "#f28b82"),
    },
    note="#5f6368",
)

DARK = Colours(
    dark=True,
    gain="#6ee7a0",
    loss="#ff8a80",
    estimated_gain="#a8d8a8",
    estimated_loss="#ffb27a",
    unknown="#b0b0b0",
    missing_background="#4a2323",
    differs_background="#463a12",
    not_cached_background="#1d3454",
    banner={
        "live": ("#16351f", "#a8e6b8", "#2e7d46"),
        "syncing": ("#172a4a", "#aecbfa", "#3b6fc4"),
        "offline": ("#2d2f31", "#dadce0", "#5f6368"),
        "warning": ("#3d2e05", "#fdd663", "#8a6d00"),
        "error": ("#451a17", "#f6aea9", "#a33a31"),
    },
    note="#b8bcc2",
)


def is_dark(palette: QPalette) -> bool:
    """Whether the palette draws light text on dark windows (a dark system theme)."""
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


def colours_for(palette: QPalette) -> Colours:
    """The colours to use under `palette`."""
    return DARK if is_dark(palette) else LIGHT


def dark_palette() -> QPalette:
    """A dark palette like the desktops' dark themes (screenshots, tests and anyone who asks)."""
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, "#202124"),
        (roles.WindowText, "#e8eaed"),
        (roles.Base, "#1b1b1d"),
        (roles.AlternateBase, "#26272a"),
        (roles.ToolTipBase, "#303134"),
        (roles.ToolTipText, "#e8eaed"),
        (roles.PlaceholderText, "#9aa0a6"),
        (roles.Text, "#e8eaed"),
        (roles.Button, "#2d2e31"),
        (roles.ButtonText, "#e8eaed"),
        (roles.BrightText, "#ffffff"),
        (roles.Highlight, "#3b6fc4"),
        (roles.HighlightedText, "#ffffff"),
        (roles.Link, "#8ab4f8"),
        (roles.Mid, "#3c4043"),
        (roles.Dark, "#111111"),
        (roles.Light, "#44474a"),
    ):
        palette.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.Text, roles.WindowText, roles.ButtonText):
        palette.setColor(disabled, role, QColor("#80868b"))
    return palette


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (1 to 21)."""

    def luminance(colour: str) -> float:
        c = QColor(colour)
        channels = []
        for value in (c.redF(), c.greenF(), c.blueF()):
            channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
        r, g, b = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)
