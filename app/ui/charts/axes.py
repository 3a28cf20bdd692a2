"""Axis arithmetic shared by the charts: tidy tick values, their labels, value → pixel."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QRectF


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` evenly spaced round values (1, 2, 2.5 or 5 × 10ⁿ apart) covering the range.

    The first and last ticks enclose `low` and `high`, so they also serve as the axis's ends.
    """
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude * 10
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            step = factor * magnitude
            break
    first = math.floor(low / step + 1e-9)
    last = max(first + 1, math.ceil(high / step - 1e-9))
    # Multiples of the step (not a running sum), so 0.1 + 0.2 noise never shows in a label.
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick's text with as many decimals as the step needs and thousands separators."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = 0  # as many as the step itself has: 0.25 → 2, 0.5 → 1, 50 → 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:,.{decimals}f}"
    return "0" if text.strip("-0.,") == "" else text


class Scale:
    """Maps values in [low, high] onto a pixel span (y grows downwards, so `flip` for y axes)."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high = low, high
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return (self.start + self.end) / 2
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)

    @classmethod
    def vertical(cls, ticks: Sequence[float], plot: QRectF) -> Scale:
        """Values up the plot area: the first tick at its bottom, the last at its top."""
        return cls(ticks[0], ticks[-1], plot.bottom(), plot.top())
