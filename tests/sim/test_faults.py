"""Fault scenarios: drops, missing end markers, slow answers, restarts, duplicates, bad rows."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from app.sim.runner import SimulatorThread
from tests.sim.ibhelpers import connect, off_loop, until
from tests.sim.rawclient import RawClient

A = "DU1111111"
UNSET = "1.7976931348623157E308"


def _positions(frames: list[list[str]]) -> list[list[str]]:
    return [f for f in frames if f[0] == "61"]


def test_drop_after_the_nth_position_row(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("drop-mid-positions")

    async def scenario() -> None:
        client = await RawClient.open(sim.port, client_id=1)
        await client.ready()
        client.send("61", "1")
        frames, closed = await client.drain(quiet=1.0)
        assert closed
        assert len(_positions(frames)) == 3
        assert "62" not in [f[0] for f in frames]
        await client.close()
        # drop_once: the next snapshot is whole again.
        ib = await connect(sim.port, 2)
        assert len(ib.positions()) == 9
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_drop_mid_snapshot_fails_an_ib_insync_connect(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("drop-mid-positions")

    async def scenario() -> None:
        with pytest.raises((ConnectionError, TimeoutError)):
            await connect(sim.port, 1, timeout=2)

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_position_end_never_comes(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("no-position-end")

    async def scenario() -> None:
        client = await RawClient.open(sim.port, client_id=1)
        await client.ready()
        client.send("61", "1")
        frames, closed = await client.drain(quiet=0.5)
        assert not closed and len(_positions(frames)) == 9
        assert "62" not in [f[0] for f in frames]
        await client.close()

        ib = await connect(sim.port, 2, timeout=0.5)  # ib_insync logs and carries on
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ib.reqPositionsAsync(), 0.5)
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_exec_details_end_never_comes_fails_the_ib_insync_connect(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("no-exec-end")

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await connect(sim.port, 1, timeout=0.5)

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_slow_responses_per_request_kind(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    basic.sim.set_faults(delays={"positions": 0.4})

    async def scenario() -> None:
        client = await RawClient.open(basic.port, client_id=1)
        await client.ready()
        started = time.monotonic()
        client.send("61", "1")
        client.send("49", "1")  # not delayed: answered before the positions
        frames = await client.read_until("62")
        assert time.monotonic() - started >= 0.4
        kinds = [f[0] for f in frames if f[0] in ("49", "61")]
        assert kinds[0] == "49"
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_daily_restart_drops_refuses_then_serves_the_same_state(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(basic.port, 1)
        before = sorted((p.account, p.contract.conId, p.position) for p in ib.positions())
        dropped = asyncio.Event()
        ib.disconnectedEvent += dropped.set
        await off_loop(lambda: basic.sim.restart(down_for=0.6))
        await asyncio.wait_for(dropped.wait(), 3)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", basic.port)
        await until(basic.sim.is_listening, within=3)
        again = await connect(basic.port, 1)
        after = sorted((p.account, p.contract.conId, p.position) for p in again.positions())
        assert after == before
        again.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_duplicate_client_id_gets_326_and_is_closed(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        first = await connect(basic.port, 7)
        second = await RawClient.open(basic.port, client_id=7)
        frames, closed = await second.drain(quiet=0.5)
        assert closed
        assert [f[:4] for f in frames] == [["4", "2", "-1", "326"]]
        await second.close()
        assert first.isConnected()
        assert basic.sim.connected_client_ids() == [7]
        first.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_drop_connections_on_demand(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        keep = await connect(basic.port, 1)
        victim = await connect(basic.port, 2)
        dropped = asyncio.Event()
        victim.disconnectedEvent += dropped.set
        assert await off_loop(lambda: basic.sim.drop_connections(client_id=2)) == 1
        await asyncio.wait_for(dropped.wait(), 3)
        assert keep.isConnected()
        keep.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_bad_rows_reach_the_wire_as_tws_would_send_them(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("bad-rows")

    async def scenario() -> None:
        client = await RawClient.open(sim.port, client_id=1)
        await client.ready()
        client.send("61", "1")
        positions = {(f[2], f[3]): f for f in _positions(await client.read_until("62"))}
        assert positions[(A, "72063691")][14] == ""  # empty quantity field
        assert ("DU9999999", "495512572") in positions  # an account not managed
        client.send("6", "2", "1", A)
        portfolio = {f[2]: f for f in await client.read_until("54") if f[0] == "7"}
        assert portfolio["4815747"][14] == "NaN"
        assert portfolio["3691937"][14] == "Infinity"
        assert portfolio["756733"][14] == UNSET
        await client.close()

        ib = await connect(sim.port, 2, account=A)
        prices = {p.contract.conId: p.marketPrice for p in ib.portfolio()}
        assert math.isnan(prices[4815747]) and math.isinf(prices[3691937])
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


@pytest.mark.parametrize("kind", ["unknown", "short", "binary"])
def test_garbage_frames_to_the_client(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop, kind: str
) -> None:
    async def scenario() -> None:
        client = await RawClient.open(basic.port, client_id=1)
        await client.ready()
        await off_loop(lambda: basic.sim.send_garbage(kind))
        frames, closed = await client.drain(quiet=0.3)
        assert len(frames) == 1 and not closed
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_ib_insync_survives_garbage_and_keeps_receiving(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> None:
        ib = await connect(basic.port, 1)
        fills: list[object] = []
        ib.execDetailsEvent += lambda trade, fill: fills.append(fill)
        for kind in ("unknown", "short"):
            await off_loop(lambda kind=kind: basic.sim.send_garbage(kind))
        await off_loop(lambda: basic.sim.fill(A, 265598, Decimal(1), Decimal(190)))
        await until(lambda: bool(fills))
        assert ib.isConnected()
        ib.disconnect()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
