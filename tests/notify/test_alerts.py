"""AlertTracker without Qt: each kind fires once per new condition, never on every sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.domain.connection import ConnectionState, ConnectionStatus
from app.domain.plan import PnlMismatch
from app.domain.values import Contract, Lifecycle, PositionStatus, SyncStatus, SyncTrigger
from app.notify import AlertKind, AlertOptions, AlertTracker, alert_options, is_market_hours
from app.settings import Settings
from app.sync.results import SyncResult

D = Decimal
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def warning(pid: int, symbol: str, since: datetime = T0, qty: str = "100") -> Lifecycle:
    return Lifecycle(
        id=pid,
        account="DU1",
        contract=Contract(con_id=1000 + pid, symbol=symbol, local_symbol=symbol),
        quantity=D(qty),
        average_price=D(10),
        status=PositionStatus.OPEN,
        opened_at=T0 - timedelta(days=1),
        missing_since=since,
    )


def result(status: SyncStatus, *mismatches: PnlMismatch, error: str | None = None) -> SyncResult:
    return SyncResult(
        SyncTrigger.PERIODIC,
        status,
        T0,
        T0,
        error=error if error or status is SyncStatus.OK else "positionEnd never arrived",
        pnl_mismatches=mismatches,
    )


def mismatch(symbol: str = "AAPL", exec_id: str = "0001.01", ours: str = "399") -> PnlMismatch:
    return PnlMismatch("DU1", 265598, symbol, D(ours), D("401.5"), (exec_id,))


OK, FAILED, SKIPPED = SyncStatus.OK, SyncStatus.FAILED, SyncStatus.SKIPPED
CONNECTED = ConnectionStatus(ConnectionState.CONNECTED, "Connected")
DROPPED = ConnectionStatus(ConnectionState.DISCONNECTED, "TWS closed the connection")
CONNECTING = ConnectionStatus(ConnectionState.CONNECTING, "Connecting…")
IB_LOST = ConnectionStatus(ConnectionState.IB_LOST, "1100")


# ---------------------------------------------------------------- missing at broker
def test_missing_warnings_present_at_start_are_the_baseline():
    tracker = AlertTracker()
    assert tracker.observe_missing([warning(1, "ES")]) == []
    assert tracker.observe_missing([warning(1, "ES")]) == []


def test_a_new_missing_warning_fires_once_not_on_every_sync():
    tracker = AlertTracker()
    tracker.observe_missing([])
    (alert,) = tracker.observe_missing([warning(1, "ES", qty="-2")])
    assert alert.kind is AlertKind.MISSING and alert.title == "A position is missing at IB"
    assert "DU1 ES -2" in alert.message and "Mark closed" in alert.message
    for _ in range(5):
        assert tracker.observe_missing([warning(1, "ES", qty="-2")]) == []
    (second,) = tracker.observe_missing([warning(1, "ES"), warning(2, "NQ")])
    assert "NQ" in second.message and "ES" not in second.message


def test_missing_again_after_reappearing_is_news_again():
    tracker = AlertTracker()
    tracker.observe_missing([])
    assert len(tracker.observe_missing([warning(1, "ES")])) == 1
    assert tracker.observe_missing([]) == []  # it came back
    later = T0 + timedelta(hours=1)
    assert len(tracker.observe_missing([warning(1, "ES", since=later)])) == 1


def test_many_new_warnings_make_one_alert():
    tracker = AlertTracker()
    tracker.observe_missing([])
    (alert,) = tracker.observe_missing([warning(i, f"S{i}") for i in range(1, 8)])
    assert alert.title == "7 positions missing at IB" and "and 2 more" in alert.message


def test_missing_switched_off_is_silent_and_does_not_replay_when_switched_on():
    tracker = AlertTracker(AlertOptions(missing=False))
    tracker.observe_missing([])
    assert tracker.observe_missing([warning(1, "ES")]) == []
    tracker.options = AlertOptions(missing=True)
    assert tracker.observe_missing([warning(1, "ES")]) == []
    assert len(tracker.observe_missing([warning(1, "ES"), warning(2, "NQ")])) == 1


def test_reset_baseline_makes_current_warnings_no_news():
    tracker = AlertTracker()
    tracker.observe_missing([])
    tracker.reset_missing_baseline()  # another ledger
    assert tracker.observe_missing([warning(5, "CL")]) == []


# ---------------------------------------------------------------- failing syncs
def test_failures_in_a_row_fire_once_at_the_threshold():
    tracker = AlertTracker(AlertOptions(failure_threshold=3))
    assert tracker.observe_result(result(FAILED)) == []
    assert tracker.observe_result(result(FAILED)) == []
    (alert,) = tracker.observe_result(result(FAILED, error="executions never ended"))
    assert alert.kind is AlertKind.SYNC_FAILURES and "3 syncs failed" in alert.message
    assert "executions never ended" in alert.message
    for _ in range(5):
        assert tracker.observe_result(result(FAILED)) == []


def test_a_good_sync_rearms_the_failure_alert_and_skips_do_not_count():
    tracker = AlertTracker(AlertOptions(failure_threshold=2))
    tracker.observe_result(result(FAILED))
    tracker.observe_result(result(OK))
    assert tracker.observe_result(result(FAILED)) == []  # the streak restarted
    assert tracker.observe_result(result(SKIPPED, error="TWS not reachable")) == []
    assert len(tracker.observe_result(result(FAILED))) == 1
    tracker.observe_result(result(SKIPPED, error="TWS not reachable"))
    assert tracker.observe_result(result(FAILED)) == []  # a skip does not re-arm
    tracker.observe_result(result(OK))
    tracker.observe_result(result(FAILED))
    assert len(tracker.observe_result(result(FAILED))) == 1


def test_lowering_the_threshold_mid_streak_still_fires_once():
    tracker = AlertTracker(AlertOptions(failure_threshold=5))
    for _ in range(3):
        assert tracker.observe_result(result(FAILED)) == []
    tracker.options = AlertOptions(failure_threshold=2)
    assert len(tracker.observe_result(result(FAILED))) == 1
    assert tracker.observe_result(result(FAILED)) == []


def test_failures_switched_off_are_silent():
    tracker = AlertTracker(AlertOptions(sync_failures=False, failure_threshold=1))
    assert tracker.observe_result(result(FAILED)) == []


# ---------------------------------------------------------------- disconnects
def test_an_unasked_drop_during_market_hours_fires_once_per_drop():
    tracker = AlertTracker()
    assert tracker.observe_status(CONNECTING, T0) == []
    assert tracker.observe_status(CONNECTED, T0) == []
    (alert,) = tracker.observe_status(DROPPED, T0)
    assert alert.kind is AlertKind.DISCONNECT and alert.title == "Disconnected from TWS"
    assert "TWS closed the connection" in alert.message
    # Retrying while offline is the same drop.
    for status in (CONNECTING, DROPPED, CONNECTING, DROPPED):
        assert tracker.observe_status(status, T0) == []
    tracker.observe_status(CONNECTED, T0)
    tracker.observe_status(CONNECTED, T0)  # announced again on resync: still connected
    (lost,) = tracker.observe_status(IB_LOST, T0)
    assert lost.title == "TWS lost its connection to IB" and "paused" in lost.message


def test_no_disconnect_alert_before_connecting_outside_hours_or_when_asked():
    tracker = AlertTracker()
    assert tracker.observe_status(DROPPED, T0) == []  # never connected: TWS closed is normal
    tracker.observe_status(CONNECTED, SATURDAY)
    assert tracker.observe_status(DROPPED, SATURDAY) == []
    tracker.observe_status(CONNECTED, T0)
    tracker.expect_disconnect()
    assert (
        tracker.observe_status(ConnectionStatus(ConnectionState.DISCONNECTED, "Stopped."), T0) == []
    )
    tracker.options = AlertOptions(disconnect=False)
    tracker.observe_status(CONNECTED, T0)
    assert tracker.observe_status(DROPPED, T0) == []


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (datetime(2026, 7, 14, 13, 30, tzinfo=UTC), True),  # 09:30 EDT
        (datetime(2026, 7, 14, 13, 29, tzinfo=UTC), False),
        (datetime(2026, 7, 14, 19, 59, tzinfo=UTC), True),  # 15:59 EDT
        (datetime(2026, 7, 14, 20, 0, tzinfo=UTC), False),  # 16:00 EDT: closed
        (datetime(2026, 1, 13, 13, 30, tzinfo=UTC), False),  # 08:30 EST
        (datetime(2026, 1, 13, 14, 30, tzinfo=UTC), True),  # 09:30 EST
        (datetime(2026, 1, 13, 21, 0, tzinfo=UTC), False),  # 16:00 EST
        (datetime(2026, 1, 17, 15, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 1, 18, 15, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_market_hours_are_new_york_0930_to_1600_on_weekdays(moment, open_):
    assert is_market_hours(moment) is open_


def test_market_hours_need_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_market_hours(datetime(2026, 1, 13, 15, 0))


# ---------------------------------------------------------------- realized P&L
def test_a_pnl_difference_fires_once():
    tracker = AlertTracker()
    (alert,) = tracker.observe_result(result(OK, mismatch()))
    assert alert.kind is AlertKind.PNL_MISMATCH
    assert "AAPL in DU1: ours 399, IB 401.5" in alert.message
    assert tracker.observe_result(result(OK, mismatch())) == []
    assert tracker.observe_result(result(OK)) == []
    (second,) = tracker.observe_result(result(OK, mismatch(), mismatch("MSFT", "0002.01")))
    assert "MSFT" in second.message and "AAPL" not in second.message


def test_pnl_switched_off_is_silent():
    tracker = AlertTracker(AlertOptions(pnl_mismatch=False))
    assert tracker.observe_result(result(OK, mismatch())) == []


def test_options_come_from_the_settings():
    settings = Settings(
        notify_missing=False,
        notify_sync_failures=True,
        notify_failure_threshold=5,
        notify_disconnect=False,
        notify_pnl_mismatch=True,
    )
    assert alert_options(settings) == AlertOptions(
        missing=False, sync_failures=True, failure_threshold=5, disconnect=False, pnl_mismatch=True
    )
    assert alert_options(Settings()) == AlertOptions()
