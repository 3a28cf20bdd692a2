"""app.cli.collector: start-up imports with the collector paused; their objects frozen after, in a
process started for the command only."""

from __future__ import annotations

import gc

import pytest

from app.cli import collector
from app.cli.collector import collector_paused


def test_what_was_allocated_while_paused_is_frozen_and_the_collector_runs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector._Process, "own", False)
    collector.claim_process()
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with collector_paused():
            assert not gc.isenabled()
            kept = [[i] for i in range(10_000)]  # tracked containers, like a module's objects
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)
        assert gc.get_count()[0] < 1_000  # no young collection is due for them
    finally:
        gc.unfreeze()  # the rest of the test run as before


def test_a_caller_of_main_keeps_its_objects_collectable(monkeypatch: pytest.MonkeyPatch) -> None:
    """main(argv) inside another program (here pytest) never freezes that program's objects."""
    from app.cli.main import main

    monkeypatch.setattr(collector._Process, "own", False)
    frozen = gc.get_freeze_count()
    assert main(["--version"]) == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    assert not collector._Process.own


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
