"""Connection supervision: offline start, client id in use, restarts, clean stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from app.broker.supervisor import Backoff, failure_status
from app.domain.connection import (
    BrokerUnavailableError,
    ConnectionState,
    IncompleteSnapshotError,
)
from app.sim.requests import In
from app.sim.runner import SimulatorThread
from tests.broker.conftest import free_port

pytestmark = pytest.mark.timeout(30)


def test_backoff_grows_caps_jitters_and_resets() -> None:
    exact = Backoff(1.0, 30.0, jitter=0.0)
    assert [exact.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    exact.reset()
    assert exact.next() == 1
    low, high = Backoff(1.0, 30.0, rng=lambda: 0.0), Backoff(1.0, 30.0, rng=lambda: 1.0)
    assert low.next() == pytest.approx(0.8) and high.next() == pytest.approx(1.2)


def test_failure_messages_tell_what_to_do() -> None:
    from app.broker.session import ClientIdInUseError

    in_use = failure_status(ClientIdInUseError("x"), "127.0.0.1", 7497, 3, 10)
    assert in_use.state is ConnectionState.CLIENT_ID_IN_USE
    assert "ib_client_id" in in_use.message and "--client-id" in in_use.message
    refused = failure_status(ConnectionRefusedError(), "127.0.0.1", 7497, 3, 10)
    assert refused.state is ConnectionState.DISCONNECTED and "not running" in refused.message


def test_tws_not_running_at_start_then_starts(
    run: Callable[..., Any],
    start_sim: Callable[..., SimulatorThread],
    make_broker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TWS closed is the normal offline state: DISCONNECTED, no exception, keeps retrying."""
    port = free_port()
    broker, rec = make_broker(port)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.DISCONNECTED)
        assert "not running" in broker.status.message
        with pytest.raises(BrokerUnavailableError, match="not running"):
            await broker.snapshot()
        await asyncio.sleep(0.5)  # a few refused attempts
        assert broker.status.state is ConnectionState.DISCONNECTED
        start_sim("basic", port=port)
        await rec.until_state(ConnectionState.CONNECTED)
        assert (await broker.snapshot()).complete

    with caplog.at_level(logging.WARNING, logger="app.broker"):
        run(scenario())
    # Refusals do not flood the status callbacks: one DISCONNECTED, then CONNECTED.
    assert rec.states() == [
        ConnectionState.CONNECTING,
        ConnectionState.DISCONNECTED,
        ConnectionState.CONNECTED,
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_client_id_in_use(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    sim = start_sim("basic").sim
    holder, holder_rec = make_broker(sim.port, client_id=5)
    broker, rec = make_broker(sim.port, client_id=5, client_id_retry=0.2)

    async def scenario() -> None:
        await holder.start()
        await holder_rec.until_state(ConnectionState.CONNECTED)
        await broker.start()
        await rec.until_state(ConnectionState.CLIENT_ID_IN_USE)
        assert "ib_client_id" in broker.status.message
        assert "--client-id" in broker.status.message
        # It keeps retrying (slowly) while the other client holds the id ...
        await rec.until(lambda: sim.received_ids(client_id=5).count(In.START_API) >= 3)
        assert broker.status.state is ConnectionState.CLIENT_ID_IN_USE
        # ... and gets in once the id is free.
        await holder.stop()
        await rec.until_state(ConnectionState.CONNECTED)
        assert (await broker.snapshot()).complete

    run(scenario())
    assert ConnectionState.CONNECTED not in rec.states()[:-1]


def test_daily_restart_reconnects_and_resyncs(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """TWS's nightly restart: socket drops, refused for a while, back; CONNECTED again."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        first = broker._session
        assert first is not None and (await broker.snapshot()).complete
        assert first.book.rows  # the live subscription's rows
        sim.restart(down_for=0.6)
        await rec.until_state(ConnectionState.DISCONNECTED)
        with pytest.raises(BrokerUnavailableError):
            await broker.snapshot()
        # The dropped connection's rows are released at once, not when a whole-heap garbage
        # collection gets to the session's reference cycles with ib_insync.
        await rec.until(lambda: not first.book.rows and not first._decoded._positions)
        await rec.until(lambda: rec.connected_count() == 2)
        snap = await broker.snapshot()
        assert snap.complete and len(snap.positions) == len(sim.positions())

    run(scenario())
    states = rec.states()
    first, last = states.index(ConnectionState.CONNECTED), len(states) - 1
    assert states[last] is ConnectionState.CONNECTED
    # "lost the connection", then (while TWS is down) "not running": offline, never an error.
    assert set(states[first + 1 : last]) == {ConnectionState.DISCONNECTED}
    assert "Lost the connection" in rec.statuses[first + 1].message


def test_drop_during_connect_retries(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """The connect's own positions answer is cut off: not connected; the retry connects."""
    sim = start_sim("drop-mid-positions").sim
    broker, rec = make_broker(sim.port)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        assert (await broker.snapshot()).complete

    run(scenario())
    assert rec.connected_count() == 1
    assert sim.received_ids().count(In.START_API) == 2


def test_stop_is_clean(
    loop: asyncio.AbstractEventLoop,
    run: Callable[..., Any],
    start_sim: Callable[..., SimulatorThread],
    make_broker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stop() cancels everything: no task left, no socket left, a snapshot in flight fails."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, timeout=5.0)

    async def scenario() -> None:
        harness = asyncio.all_tasks()  # this scenario and run()'s wait_for around it
        await broker.start()
        await broker.start()  # idempotent
        await rec.until_state(ConnectionState.CONNECTED)
        sim.set_faults(withhold_end={"executions"})
        pending = asyncio.ensure_future(broker.snapshot())
        await rec.until(lambda: sim.received_ids().count(In.REQ_EXECUTIONS) >= 1)
        await broker.stop()
        with pytest.raises(IncompleteSnapshotError, match="stopped during the executions"):
            await pending
        assert broker.status.state is ConnectionState.DISCONNECTED
        await rec.until(lambda: not sim.connected_client_ids())
        assert asyncio.all_tasks() - harness == set()

    with caplog.at_level(logging.DEBUG):
        run(scenario(), timeout=4.0)
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]


def test_stop_while_offline_and_restart(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    port = free_port()
    broker, rec = make_broker(port)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.DISCONNECTED)
        await broker.stop()
        assert broker.status.message == "Stopped."
        start_sim("single", port=port)
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)

    run(scenario())
