"""A Runtime collects garbage less often while it is open, and leaves the process as it was."""

from __future__ import annotations

import gc
from pathlib import Path

from app.runtime import GC_THRESHOLDS, Runtime, heap_friendly_gc
from app.settings import Settings


def test_thresholds_follow_the_open_runtimes(tmp_path: Path) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    settings = Settings(database_url=str(tmp_path / "ledger.sqlite"))
    first = Runtime.open(settings)
    second = Runtime.open(settings)
    assert gc.get_threshold() == GC_THRESHOLDS
    first.close()
    assert gc.get_threshold() == GC_THRESHOLDS  # the second is still open
    second.close()
    second.close()  # idempotent: restores nothing twice
    assert gc.get_threshold() == before


def test_nested_uses_restore_the_first_value() -> None:
    before = gc.get_threshold()
    with heap_friendly_gc():
        with heap_friendly_gc():
            assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before


def test_an_outer_use_keeps_its_own_thresholds(tmp_path: Path) -> None:
    """The window's thresholds hold through the Runtimes it opens (settings applied anew)."""
    before = gc.get_threshold()
    window = (10_000, 2, 1_000)
    with heap_friendly_gc(window):
        runtime = Runtime.open(Settings(database_url=str(tmp_path / "ledger.sqlite")))
        assert gc.get_threshold() == window
        runtime.close()
        assert gc.get_threshold() == window
    assert gc.get_threshold() == before
