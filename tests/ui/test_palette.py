"""Readable under a dark palette too: every text colour keeps WCAG AA contrast (4.5:1) on every
background it is drawn on, and the window switches colours with the palette (issue 19)."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from app.ui.palette import DARK, LIGHT, colours_for, contrast, dark_palette, is_dark
from tests.ui.conftest import eventually, free_port
from tests.ui.test_estimates import seed_three_bases

AA = 4.5
ROLE = QPalette.ColorRole


def _table_backgrounds(palette: QPalette, colours) -> list[str]:
    return [
        palette.color(ROLE.Base).name(),
        palette.color(ROLE.AlternateBase).name(),
        colours.missing_background,
        colours.differs_background,
        colours.not_cached_background,
    ]


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_text_colours_meet_wcag_aa(qapp, dark):
    palette = dark_palette() if dark else QApplication.style().standardPalette()
    colours = colours_for(palette)
    assert colours is (DARK if dark else LIGHT)
    text = palette.color(ROLE.Text).name()
    failures = []
    for background in _table_backgrounds(palette, colours):
        for name in ("gain", "loss", "estimated_gain", "estimated_loss", "unknown"):
            ratio = contrast(getattr(colours, name), background)
            if ratio < AA:
                failures.append(f"{name} on {background}: {ratio:.2f}")
        if contrast(text, background) < AA:
            failures.append(f"text {text} on {background}: {contrast(text, background):.2f}")
    for level, (background, foreground, _border) in colours.banner.items():
        if contrast(foreground, background) < AA:
            failures.append(f"banner {level}: {contrast(foreground, background):.2f}")
    window = palette.color(ROLE.Window).name()
    for name in ("gain", "loss", "note"):  # the summary strip and dialogs draw on the window
        if contrast(getattr(colours, name), window) < AA:
            failures.append(f"{name} on the window {window}")
    assert not failures, failures


def test_contrast_formula():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_the_window_follows_the_palette(make_app, qloop, tmp_path):
    seed_three_bases(tmp_path / "ledger.sqlite")  # an exact gain, an estimate, an unknown
    app = make_app(free_port())
    w = app.window

    async def scenario():
        await app.start()
        cache = w.cache_model
        column = next(i for i, c in enumerate(cache.columns) if c.title == "Realized")
        exact = next(p for p in cache.values() if p.contract.symbol == "AAPL")
        cell = cache.index(cache.row_of(exact.key), column)
        foreground = cache.data(cell, 9).color().name()  # Qt.ForegroundRole
        assert foreground == LIGHT.gain
        w.setPalette(dark_palette())
        assert is_dark(w.palette()) and app.controller.colours is DARK
        assert cache.data(cell, 9).color().name() == DARK.gain
        assert DARK.banner[w.banner.state.level.value][0] in w.banner.styleSheet()
        w.setPalette(QApplication.style().standardPalette())
        assert app.controller.colours is LIGHT
        assert cache.data(cell, 9).color().name() == LIGHT.gain

    qloop.run_until_complete(asyncio.wait_for(scenario(), 30))


def test_a_palette_change_after_stop_reads_nothing(make_app, qloop, tmp_path, caplog):
    """Regression: a palette change after the window stopped (its ledger closed) started a
    summary load that failed with "cannot schedule new futures after shutdown"."""
    seed_three_bases(tmp_path / "ledger.sqlite")
    app = make_app(free_port())
    w = app.window

    async def scenario():
        await app.start()
        summary = app.controller.summary
        await eventually(lambda: summary.loads)
        loads = summary.loads
        await app.controller.stop()  # the ledger closes; the window stays (as at quit)
        w.setPalette(dark_palette())
        await asyncio.sleep(0.6)  # longer than the summary's settle time
        assert summary.loads == loads and not summary._loading
        assert not [r for r in caplog.records if "summary" in r.getMessage()]

    qloop.run_until_complete(asyncio.wait_for(scenario(), 30))
