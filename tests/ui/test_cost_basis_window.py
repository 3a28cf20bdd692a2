"""The window's realized totals follow the setting `cost_basis` (issue 17, item 4): the Closed
view's totals line, the summary strip and the Charts tab sum average cost or FIFO lots, say which,
and change at once when the Settings dialog changes it — real widgets offscreen, a real SQLite
ledger written by real syncs (tests/db/cost_basis_ledger.py, figures worked there)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date

from PySide6.QtWidgets import QComboBox

from app.domain.money import RealizedTotals
from app.domain.values import CostBasis
from app.ui.dialogs.settings_dialog import SettingsDialog
from tests.db.cost_basis_ledger import cost_basis_ledger
from tests.domain.ledger_fixture import D
from tests.ui.conftest import eventually, free_port

AVERAGE_LINE = (
    "<b>1</b> closed positions · realized P&amp;L, <b>average cost</b>: USD <b>198.00</b>"
    " — plus, by partial closes of open positions: EUR <b>225.00</b> · USD <b>597.00</b>"
)
FIFO_LINE = (
    "<b>1</b> closed positions · realized P&amp;L, <b>FIFO lots</b>: USD <b>0.00</b>, "
    "<i>1 unpriced</i> — plus, by partial closes of open positions: EUR <b>250.00</b> "
    "(exact 0.00, <i>estimated 250.00</i>) · USD <b>647.00</b>"
)


def _days(chart):
    return [(d.day, d.realized, d.estimated, d.unknown) for d in chart.series.days]


async def _choose_in_settings_dialog(app, basis: CostBasis) -> None:
    """Settings… → Realized totals → OK, as a user does (the dialog opens window-modal)."""
    app.window.settings_action.trigger()
    dialog = await eventually(
        lambda: next((d for d in app.window.findChildren(SettingsDialog) if d.isVisible()), None)
    )
    combo = dialog.findChild(QComboBox, "cost_basis")
    combo.setCurrentIndex(combo.findData(basis.value))
    dialog._check_and_accept()
    await eventually(lambda: app.controller.runtime.settings.cost_basis is basis)


def test_totals_follow_cost_basis_and_the_settings_dialog_re_renders_them(
    make_app, qloop, tmp_path
):
    """Guards: under cost_basis=fifo the window's Closed totals, summary strip and daily chart
    still summed average cost (USD 795 / EUR 225 instead of USD 647 + 1 unpriced / EUR 250
    estimated) and named neither figure."""
    cost_basis_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())  # offline: every figure comes from the cache
    app.controller.charts.tz = UTC
    w = app.window
    strip, chart, picker = w.summary_strip, w.charts.pnl_chart, w.charts.pnl_currency

    def strip_totals():
        return {c.currency: c.realized_total for c in strip.summary.currencies}

    async def scenario():
        await app.start()
        # Average cost (the default).
        await eventually(lambda: "closed positions" in w.closed_totals.text())
        assert AVERAGE_LINE in w.closed_totals.text()
        assert "Realized column below is average cost" not in w.closed_totals.text()
        await eventually(lambda: strip.summary is not None and strip.summary.currencies)
        assert strip_totals() == {"EUR": RealizedTotals(D(225)), "USD": RealizedTotals(D(795))}
        assert "realized at <b>average cost</b>" in strip.text()
        w.tabs.setCurrentWidget(w.charts)
        await eventually(lambda: chart.series.days)
        assert picker.currentText() == "EUR"
        assert _days(chart) == [(date(2026, 11, 25), D(225), D(0), 0)]
        assert "Realized P&amp;L per day, average cost" in w.charts.pnl_title.text()
        picker.setCurrentText("USD")
        await eventually(lambda: chart.series.currency == "USD")
        assert _days(chart) == [(date(2026, 11, 24), D(795), D(0), 0)]

        # FIFO lots, chosen in the Settings dialog: everything re-renders without a restart.
        loads, strip_loads = app.controller.charts.loads, strip.summary
        await _choose_in_settings_dialog(app, CostBasis.FIFO)
        await eventually(lambda: "FIFO lots" in w.closed_totals.text())
        assert FIFO_LINE in w.closed_totals.text()
        assert "Realized column below is average cost" in w.closed_totals.text()
        await eventually(lambda: strip.summary is not strip_loads)
        assert strip.summary.cost_basis is CostBasis.FIFO
        assert strip_totals() == {
            "EUR": RealizedTotals(D(0), D(250), 0),
            "USD": RealizedTotals(D(647), D(0), 1),
        }
        text = strip.text()
        assert "realized at <b>FIFO lots</b>" in text and "≈ 250.00 estimated" in text
        assert "+ 1 ?" in text
        await eventually(lambda: app.controller.charts.loads > loads)
        assert chart.cost_basis is CostBasis.FIFO and picker.currentText() == "USD"
        assert _days(chart) == [(date(2026, 11, 24), D(647), D(0), 1)]
        caption = w.charts.pnl_title.text()
        assert "Realized P&amp;L per day, FIFO lots" in caption and "1 unpriced" in caption
        assert "Realized (FIFO lots) 647.00 USD" in chart.day_tip(chart.series.days[0])
        picker.setCurrentText("EUR")
        await eventually(lambda: chart.series.currency == "EUR")
        assert _days(chart) == [(date(2026, 11, 25), D(250), D(250), 0)]
        assert "estimated 250.00" in w.charts.pnl_title.text()

        # And back to average cost.
        await _choose_in_settings_dialog(app, CostBasis.AVERAGE)
        await eventually(lambda: "average cost" in w.closed_totals.text())
        assert AVERAGE_LINE in w.closed_totals.text()
        await eventually(lambda: chart.cost_basis is CostBasis.AVERAGE)
        assert _days(chart) == [(date(2026, 11, 25), D(225), D(0), 0)]

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
