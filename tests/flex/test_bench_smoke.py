"""The Flex import benchmark's code path at a tiny size, so `python -m tests.bench.flex_import`
cannot rot (no timing asserted; the figure is the benchmark's own output)."""

from __future__ import annotations

from tests.bench.flex_import import main, run


def test_the_benchmark_runs_at_a_tiny_size(capsys):
    samples = run(trades=400, contracts=20, rounds=1)
    assert set(samples) == {"flex.parse", "flex.import", "flex.total"}
    assert all(len(v) == 1 and v[0] > 0 for v in samples.values())
    assert main(["--trades", "200", "--contracts", "10", "--rounds", "1"]) == 0
    assert "budget 10 s" in capsys.readouterr().out
