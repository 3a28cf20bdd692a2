"""GET /api/sync/status totals realized P&L in the figure the setting `cost_basis` picks and says
which (issue 17, item 4) — real HTTP over loopback to the real server, on the known ledger of
tests/db/cost_basis_ledger.py (figures worked there); no sync runs, so the ledger stays known."""

from __future__ import annotations

import json

from app.cli.main import main
from app.domain.values import CostBasis
from tests.api.conftest import AUTH
from tests.db.cost_basis_ledger import cost_basis_ledger


def test_status_totals_follow_the_setting_in_force(make_api, run, tmp_path, capsys, monkeypatch):
    """Guards: the API's status document always summed average cost (and said `average`)
    whatever the setting, unlike `status --json`; a setting applied by the window (in place,
    without a restart) must show at the next request."""
    ledger = tmp_path / "ledger.sqlite"
    cost_basis_ledger(ledger)

    async def scenario():
        api = await make_api()
        _, average, _ = await api.request("GET", "/api/sync/status", headers=AUTH)
        runtime = api.runtime
        # What the window's RuntimeHolder.apply does with a new cost_basis.
        runtime.settings = runtime.settings.model_copy(update={"cost_basis": CostBasis.FIFO})
        status, fifo, _ = await api.request("GET", "/api/sync/status", headers=AUTH)
        assert status == 200
        _, rows, _ = await api.request("GET", "/api/positions?all=true", headers=AUTH)
        return average, fifo, rows

    average, fifo, rows = run(scenario(), timeout=30)
    assert average["cost_basis"] == "average"
    assert average["realized_pnl_by_currency"] == {"EUR": "225", "USD": "795"}
    assert average["realized_pnl_estimated_by_currency"] == {"EUR": "0", "USD": "0"}
    assert average["realized_pnl_unknown_by_currency"] == {"EUR": 0, "USD": 0}
    assert fifo["cost_basis"] == "fifo"
    assert fifo["realized_pnl_by_currency"] == {"EUR": "250", "USD": "647"}
    assert fifo["realized_pnl_estimated_by_currency"] == {"EUR": "250", "USD": "0"}
    assert fifo["realized_pnl_unknown_by_currency"] == {"EUR": 0, "USD": 1}
    # The same document `status --json` prints under the same setting.
    monkeypatch.setenv("POSITION_SYNC_COST_BASIS", "fifo")
    assert main(["status", "--json", "--db", str(ledger)]) == 0
    printed = json.loads(capsys.readouterr().out)
    keys = [k for k in printed if k.startswith("realized_pnl") or k == "cost_basis"]
    assert {k: fifo[k] for k in keys} == {k: printed[k] for k in keys}
    # A lifecycle's own figure stays average cost, as its schema says, whatever the setting.
    assert sorted((r["symbol"], r["realized_pnl"]) for r in rows) == [
        ("AAPL", "597"),
        ("MSFT", "198"),
        ("SAP", "225"),
    ]
