"""A misbehaving client loses its own connection only; everyone else keeps being served."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from app.sim.runner import SimulatorThread
from tests.sim.rawclient import RawClient


async def _healthy_client_still_served(
    port: int, healthy: RawClient, sim_fill: Callable[[], None]
) -> None:
    """An already-connected client gets a live push, and a new client can still connect."""
    await asyncio.get_running_loop().run_in_executor(None, sim_fill)
    frames = [f for f in await healthy.read_until("59") if f[0] != "4"]  # skip farm notices
    assert [f[0] for f in frames][:3] == ["5", "3", "11"]
    newcomer = await RawClient.open(port, client_id=99)
    assert newcomer.handshake is not None and newcomer.handshake[0] == "176"
    await newcomer.ready()
    await newcomer.close()


async def _bad_prefix(port: int) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    return RawClient(reader, writer)


async def _unsupported_versions(port: int) -> RawClient:
    return await RawClient.open(port, versions="v100..150")


async def _oversized_frame(port: int) -> RawClient:
    client = await RawClient.open(port, client_id=31)
    await client.ready()
    client.send_bytes(struct.pack(">I", 200 * 1024 * 1024) + b"x" * 64)
    return client


async def _garbage_frame(port: int) -> RawClient:
    client = await RawClient.open(port, client_id=32)
    await client.read_until("9")
    client.send("\xff\xfegarbage", "more")
    return client


async def _malformed_request(port: int) -> RawClient:
    client = await RawClient.open(port, client_id=33)
    await client.read_until("9")
    client.send("76", "1", "not-a-number", "DU1111111", "", "0")
    return client


async def _garbage_before_start_api(port: int) -> RawClient:
    client = await RawClient.open(port)
    client.send_bytes(struct.pack(">I", 5) + b"\x00\x01\x02\x03\x04")
    return client


@pytest.mark.parametrize(
    "misbehave",
    [
        _bad_prefix,
        _unsupported_versions,
        _oversized_frame,
        _garbage_frame,
        _malformed_request,
        _garbage_before_start_api,
    ],
)
def test_a_bad_client_is_closed_and_the_others_are_served(
    basic: SimulatorThread,
    loop: asyncio.AbstractEventLoop,
    misbehave: Callable[[int], Awaitable[RawClient]],
) -> None:
    async def scenario() -> None:
        healthy = await RawClient.open(basic.port, client_id=1)
        await healthy.ready()
        bad = await misbehave(basic.port)
        assert await bad.closed_by_peer(within=3.0)
        await bad.close()
        await _healthy_client_still_served(
            basic.port,
            healthy,
            lambda: basic.sim.fill("DU1111111", 265598, Decimal(1), Decimal(190)),
        )
        await healthy.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))


def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    start_sim: Callable[..., SimulatorThread], loop: asyncio.AbstractEventLoop
) -> None:
    sim = start_sim("basic", handshake_timeout=0.3)

    async def scenario() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        client = RawClient(reader, writer)
        assert await client.closed_by_peer(within=3.0)
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))


def test_nothing_is_sent_between_handshake_and_start_api(
    basic: SimulatorThread, loop: asyncio.AbstractEventLoop
) -> None:
    """ibapi reads the handshake reply with one recv() and drops whatever came with it."""

    async def scenario() -> None:
        client = await RawClient.open(basic.port)
        frames, closed = await client.drain(quiet=0.3)
        assert frames == [] and not closed
        client.send("61", "1")  # before startApi: ignored, like TWS
        frames, _ = await client.drain(quiet=0.3)
        assert frames == []
        client.send("71", "2", "5", "")
        frames = await client.read_until("9")
        assert [f[0] for f in frames] == ["15", "9"]
        assert frames[0] == ["15", "1", "DU1111111,DU2222222"]
        await client.close()

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))


def test_refuses_to_listen_beyond_loopback_unless_asked() -> None:
    from app.sim.server import GatewaySimulator

    with pytest.raises(ValueError, match="refusing to listen"):
        GatewaySimulator(host="0.0.0.0")
    GatewaySimulator(host="127.0.0.2")  # loopback range is fine
    GatewaySimulator(host="0.0.0.0", allow_non_loopback=True)  # explicit opt-in (not started)
