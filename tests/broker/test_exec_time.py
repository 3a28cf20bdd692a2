"""Execution times: each form TWS sends, read into UTC in the right zone, never guessed silently.

Pure tests of convert.execution_time (incl. the DST edges), then the real client: ib_insync
decoding execDetails from the simulator worded as each TWS version words it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.broker.convert import RowError, execution_time
from app.domain.connection import ConnectionState
from app.sim.runner import SimulatorThread
from app.sim.scenarios import get_scenario

NEW_YORK = "America/New_York"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------- pure
@pytest.mark.parametrize(
    ("text", "expected", "zone", "zoned"),
    [
        # Older TWS: no zone; the TWS login's zone (EST in December: UTC-5) is assumed.
        ("20231204  10:15:30", utc(2023, 12, 4, 15, 15, 30), NEW_YORK, False),
        ("20231204 10:15:30", utc(2023, 12, 4, 15, 15, 30), NEW_YORK, False),
        # Summer: EDT, UTC-4.
        ("20230704  10:15:30", utc(2023, 7, 4, 14, 15, 30), NEW_YORK, False),
        # A named zone wins over the setting, whatever the setting says.
        ("20231204 10:15:30 Europe/London", utc(2023, 12, 4, 10, 15, 30), "Europe/London", True),
        ("20231204 10:15:30 US/Eastern", utc(2023, 12, 4, 15, 15, 30), "US/Eastern", True),
        # IB's UTC form and epoch seconds.
        ("20231204-15:15:30", utc(2023, 12, 4, 15, 15, 30), "UTC", True),
        ("1701702930", utc(2023, 12, 4, 15, 15, 30), "UTC", True),
    ],
)
def test_each_form_reads_to_the_right_instant(
    text: str, expected: datetime, zone: str, zoned: bool
) -> None:
    read = execution_time(text, NEW_YORK)
    assert read.at == expected and read.at.tzinfo is UTC
    assert (read.zone, read.zoned, read.ambiguous) == (zone, zoned, False)


def test_the_setting_decides_only_zone_less_times() -> None:
    """Guards against reading a zone-less time in this machine's zone (ib_insync issue #287)."""
    assert execution_time("20231204  10:15:30", "Asia/Tokyo").at == utc(2023, 12, 4, 1, 15, 30)
    assert execution_time("20231204  10:15:30", "UTC").at == utc(2023, 12, 4, 10, 15, 30)
    named = "20231204 10:15:30 Asia/Tokyo"
    assert execution_time(named, "UTC").at == execution_time(named, NEW_YORK).at


def test_utc_form_is_not_read_in_the_tws_zone() -> None:
    """Guards against ib_insync's reading of `yyyyMMdd-HH:mm:ss` as local time (issue #671)."""
    assert execution_time("20231214-20:57:37", NEW_YORK).at == utc(2023, 12, 14, 20, 57, 37)


def test_dst_edges_of_the_tws_zone() -> None:
    # Spring forward, 12 Mar 2023: 01:59:59 EST is the last second before 03:00:00 EDT.
    assert execution_time("20230312  01:59:59", NEW_YORK).at == utc(2023, 3, 12, 6, 59, 59)
    assert execution_time("20230312  03:00:00", NEW_YORK).at == utc(2023, 3, 12, 7, 0, 0)
    # Fall back, 5 Nov 2023: 00:59:59 EDT and 02:00:00 EST are unambiguous.
    assert execution_time("20231105  00:59:59", NEW_YORK).at == utc(2023, 11, 5, 4, 59, 59)
    assert execution_time("20231105  02:00:00", NEW_YORK).at == utc(2023, 11, 5, 7, 0, 0)


def test_a_time_in_the_skipped_hour_is_refused() -> None:
    """Guards against inventing an instant for a wall time that never existed there: the
    setting (or TWS) is wrong, so the fill is skipped with a reason, not booked an hour off."""
    with pytest.raises(RowError, match=r"does not exist in America/New_York.*tws_timezone"):
        execution_time("20230312  02:30:00", NEW_YORK)


def test_a_time_in_the_repeated_hour_takes_the_earlier_and_says_so() -> None:
    read = execution_time("20231105  01:30:00", NEW_YORK)
    assert read.at == utc(2023, 11, 5, 5, 30)  # 01:30 EDT, not 01:30 EST (06:30 UTC)
    assert read.ambiguous
    named = execution_time("20231105 01:30:00 US/Eastern", "UTC")
    assert named.at == utc(2023, 11, 5, 5, 30) and named.ambiguous


@pytest.mark.parametrize(
    "text",
    ["20231204 10:15:30 Mars/Olympus", "2023-12-04 10:15", "", "yesterday", "20231304  10:15:30"],
)
def test_unreadable_times_are_row_errors(text: str) -> None:
    with pytest.raises(RowError):
        execution_time(text, NEW_YORK)


# ---------------------------------------------------------------------------- real client
def _sim(start_sim: Callable[..., SimulatorThread], form: str, zone: str) -> SimulatorThread:
    state = get_scenario("basic").build()
    state.exec_zone = zone
    state.exec_time_form = form
    return start_sim("basic", state=state)


def _fills(run: Callable[..., Any], broker: Any, rec: Any) -> Any:
    async def scenario() -> Any:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        return await broker.snapshot(), await broker.snapshot()

    return run(scenario())


pytestmark = pytest.mark.timeout(30)


def test_zone_less_times_read_in_tws_timezone_and_logged_once(
    run: Callable[..., Any],
    start_sim: Callable[..., SimulatorThread],
    make_broker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against zone-less execution times read silently in this machine's zone (UTC here)
    when the TWS login is in Tokyo: every fill would be booked nine hours late."""
    sim = _sim(start_sim, "local", "Asia/Tokyo").sim
    broker, rec = make_broker(sim.port, tws_timezone="Asia/Tokyo")
    caplog.set_level(logging.WARNING, logger="app.broker.session")
    first, second = _fills(run, broker, rec)
    executions = {e.exec_id: e for e in sim.executions()}
    assert len(executions) >= 2
    for snap in (first, second):
        assert {f.exec_id for f in snap.fills} == set(executions)
        for fill in snap.fills:
            assert fill.time == executions[fill.exec_id].time.replace(microsecond=0)
    notes = [r for r in caplog.records if "without a zone read as Asia/Tokyo" in r.getMessage()]
    assert len(notes) == 1  # once per connection, not once per fill or per snapshot


def test_a_wrong_tws_timezone_moves_zone_less_times_by_its_offset(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """The setting, not the machine or a guess, decides: Berlin set for a Tokyo login reads
    Tokyo's wall clock as Berlin's (7 or 8 hours off)."""
    sim = _sim(start_sim, "local", "Asia/Tokyo").sim
    broker, rec = make_broker(sim.port, tws_timezone="Europe/Berlin")
    snap, _ = _fills(run, broker, rec)
    executions = {e.exec_id: e for e in sim.executions()}
    assert snap.fills
    for fill in snap.fills:
        real = executions[fill.exec_id].time.replace(microsecond=0)
        tokyo_wall = real.astimezone(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
        assert fill.time != real
        assert fill.time == tokyo_wall.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


@pytest.mark.parametrize("form", ["zoned", "utc"])
def test_times_that_say_their_zone_ignore_the_setting(
    run: Callable[..., Any],
    start_sim: Callable[..., SimulatorThread],
    make_broker: Any,
    caplog: pytest.LogCaptureFixture,
    form: str,
) -> None:
    sim = _sim(start_sim, form, "US/Eastern").sim
    broker, rec = make_broker(sim.port, tws_timezone="Asia/Tokyo")
    caplog.set_level(logging.WARNING, logger="app.broker.session")
    snap, _ = _fills(run, broker, rec)
    executions = {e.exec_id: e for e in sim.executions()}
    assert {f.exec_id for f in snap.fills} == set(executions)
    for fill in snap.fills:
        assert fill.time == executions[fill.exec_id].time.replace(microsecond=0)
    assert not [r for r in caplog.records if "without a zone" in r.getMessage()]
