"""The banner's words and colour for every state (a pure function of the app's state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.connection import ConnectionState, ConnectionStatus
from app.domain.values import SyncStatus, SyncTrigger
from app.sync.results import SyncResult
from app.ui.banner import Level, banner_state

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
SYNCED = NOW - timedelta(seconds=8)
CONNECTED = ConnectionStatus(ConnectionState.CONNECTED, "Connected")


def result(status: SyncStatus, error: str | None = None, superseded: bool = False) -> SyncResult:
    return SyncResult(SyncTrigger.PERIODIC, status, NOW, NOW, error=error, superseded=superseded)


def state(status=CONNECTED, running=False, last=None, synced=SYNCED, missing=0):
    return banner_state(
        status, running=running, last_result=last, last_synced=synced, missing=missing, now=NOW
    )


def test_live_ticks_with_age():
    assert state().text == "Live — synced 8 s ago" and state().level is Level.LIVE


def test_syncing():
    shown = state(running=True)
    assert shown.level is Level.SYNCING and shown.text.startswith("Syncing…")


@pytest.mark.parametrize(
    ("connection", "level", "words"),
    [
        (ConnectionState.DISCONNECTED, Level.OFFLINE, "Offline — TWS not reachable; cached"),
        (ConnectionState.IB_LOST, Level.WARNING, "Broker lost connection to IB"),
        (ConnectionState.CLIENT_ID_IN_USE, Level.ERROR, "Client id in use — change it"),
    ],
)
def test_connection_states_say_how_old_the_cache_is(connection, level, words):
    message = "change it in Settings (ib_client_id)" if level is Level.ERROR else ""
    shown = state(ConnectionStatus(connection, message))
    assert shown.level is level and words in shown.text
    assert "(8 s old)" in shown.text


def test_sync_failed_says_why():
    shown = state(last=result(SyncStatus.FAILED, "positionEnd never came"))
    assert shown.level is Level.ERROR
    assert shown.text.startswith("Sync failed — positionEnd never came")


def test_superseded_by_another_syncer_is_not_a_failure():
    """Regression guard: a run superseded by a newer commit once read as "Sync failed"."""
    shown = state(last=result(SyncStatus.SKIPPED, "superseded: …", superseded=True))
    assert shown.level is Level.LIVE


def test_missing_positions_are_counted_and_warn():
    shown = state(missing=2)
    assert shown.level is Level.WARNING and "2 positions missing at broker" in shown.text


def test_never_synced_offline():
    shown = state(ConnectionStatus(ConnectionState.DISCONNECTED, ""), synced=None)
    assert "no complete sync yet" in shown.text


def test_before_the_ledger_is_read_the_banner_says_so():
    """Regression (issue 19): at start-up the banner said "no complete sync yet" although the
    ledger had one — it had not been read yet."""
    for connection in (ConnectionState.CONNECTING, ConnectionState.DISCONNECTED):
        shown = banner_state(
            ConnectionStatus(connection, ""),
            running=False,
            last_result=None,
            last_synced=None,
            missing=0,
            now=NOW,
            ledger_read=False,
        )
        assert "reading the cached ledger" in shown.text
        assert "no complete sync yet" not in shown.text
    connected = banner_state(
        CONNECTED,
        running=False,
        last_result=None,
        last_synced=None,
        missing=0,
        now=NOW,
        ledger_read=False,
    )
    assert "waiting for the first complete sync" not in connected.text


def test_demo_says_so_in_every_state():
    for status in (CONNECTED, ConnectionStatus(ConnectionState.DISCONNECTED, "")):
        shown = banner_state(
            status,
            running=False,
            last_result=None,
            last_synced=SYNCED,
            missing=1,
            now=NOW,
            demo=True,
        )
        assert shown.text.startswith("DEMO")


def test_stale_prices_and_unavailable_fills_are_told():
    """Issue 16: the banner says which account's prices are stale (since when, why) and that
    fills were unavailable; a selective run changes nothing of it; a full run clears it."""
    from dataclasses import replace

    from app.ui.banner import note_result

    first = result(SyncStatus.OK)
    gaps = note_result(None, replace(first, finished_at=NOW - timedelta(hours=1)))
    gapped = replace(
        first,
        stale_prices=(("DU2222222", "TWS answered … with error 2101"),),
        fills_unavailable="no complete answer to the executions request within 10 s",
    )
    gaps = note_result(gaps, gapped)
    gaps = note_result(gaps, replace(first, selective=True))  # says nothing about prices
    shown = banner_state(
        CONNECTED,
        running=False,
        last_result=gapped,
        last_synced=SYNCED,
        missing=0,
        now=NOW,
        gaps=gaps,
    )
    assert shown.level is Level.WARNING
    assert "prices stale for DU2222222 (as of " in shown.text and "2101" in shown.text
    assert "fills unavailable — changes since are estimates" in shown.text
    cleared = note_result(gaps, first)
    assert cleared is not None and not cleared.stale and cleared.fills_unavailable is None
    plain = banner_state(
        CONNECTED,
        running=False,
        last_result=first,
        last_synced=SYNCED,
        missing=0,
        now=NOW,
        gaps=cleared,
    )
    assert plain.text == "Live — synced 8 s ago"
