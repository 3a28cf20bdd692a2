"""The benchmark's code path at a tiny size, so `python -m tests.bench` cannot rot.

No timing is asserted: only that every figure is produced, the table lists each budget, and the
JSON holds the samples. The real run is `python -m tests.bench` (README, Performance).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.__main__ import main
from tests.bench.report import evaluate, table

pytestmark = pytest.mark.slow


def test_every_figure_at_a_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    argv = ["--sizes", "30,60", "--rounds", "1", "--updates", "1", "--fills", "100",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    samples = doc["samples"]
    for size in ("30", "60"):
        figures = samples[size]
        for name in (
            "sync.first.own", "sync.moved.own", "sync.unchanged.own", "sync.restart.own",
            "sync.first.db", "floor.sqlite.first", "floor.sqlite.moved", "ib.snapshot",
            "update.committed", "cli.first", "cli.moved", "floor.ib.process", "cli.first.rss",
            "ui.stall", "ui.update.shown", "ui.rss", "ui.full_gc", "ui.cold_start", "ui.cold_rss",
        ):  # fmt: skip
            assert figures.get(name), f"{name} missing at {size}"
    for name in ("refold.fold", "refold.mark_closed", "refold.commission",
                 "refold.mark_closed.cold", "refold.commission.cold"):  # fmt: skip
        assert samples["1"].get(name), f"{name} missing"
    rows = evaluate({int(k): v for k, v in samples.items()})
    assert not [r for r in rows if r.get("met") is None and "budget" in r]  # all measured
    printed = capsys.readouterr().out
    assert table(rows).splitlines()[0] in printed
    assert "one update → committed: 60 vs 30" in printed
