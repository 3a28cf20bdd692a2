"""The read-only guard: order, cancel and exercise messages never leave (DESIGN rule 11)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from ib_insync import Contract, LimitOrder, Order

from app.broker.guard import OrderMessageBlockedError, check_fields, check_frames
from app.domain.connection import ConnectionState
from app.sim.requests import ORDER_MESSAGES, In
from app.sim.runner import SimulatorThread

pytestmark = pytest.mark.timeout(30)


def frame(*fields: str) -> bytes:
    payload = "\0".join(fields).encode() + b"\0"
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize("msg_id", ["3", "4", "19", "21", "58"])
def test_forbidden_ids_are_refused(msg_id: str) -> None:
    with pytest.raises(OrderMessageBlockedError):
        check_fields([msg_id, "1", "2"])
    with pytest.raises(OrderMessageBlockedError):
        check_frames(frame("61", "1") + frame(msg_id, "1"))


def test_reads_and_the_handshake_pass() -> None:
    for fields in (["61", "1"], ["6", "2", "1", "DU1"], ["7", "3", "5"], ["15", "1", "0"]):
        check_fields(fields)
    check_frames(b"API\0" + frame("v157..176"))
    with pytest.raises(OrderMessageBlockedError, match="autoBind"):
        check_fields(["15", "1", "1"])


def test_guard_blocks_orders_on_a_live_connection(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread], make_broker: Any
) -> None:
    """Orders, cancels and exercises raise before any byte is written; the simulator's inbound
    record holds no order message id, though client id 0 (auto-binding in ib_insync) is used."""
    sim = start_sim("basic").sim
    broker, rec = make_broker(sim.port, client_id=0)

    async def scenario() -> None:
        await broker.start()
        await rec.until_state(ConnectionState.CONNECTED)
        ib = broker._session.ib  # the real ib_insync IB of the live connection
        contract = Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART")
        attempts = [
            lambda: ib.placeOrder(contract, LimitOrder("BUY", 1, 1.0)),
            lambda: ib.cancelOrder(Order(orderId=5)),
            ib.reqGlobalCancel,
            lambda: ib.exerciseOptions(contract, 1, 1, "DU1111111", 0),
            lambda: ib.client.conn.sendMsg(frame("3", "99")),
        ]
        for attempt in attempts:
            with pytest.raises(OrderMessageBlockedError):
                attempt()
        with pytest.raises(OrderMessageBlockedError):
            await ib.whatIfOrderAsync(contract, LimitOrder("BUY", 1, 1.0))
        snapshot = await broker.snapshot()  # the connection is still fine
        assert snapshot.complete

    run(scenario())
    received = set(sim.received_ids())
    assert received.isdisjoint(ORDER_MESSAGES)
    assert In.REQ_AUTO_OPEN_ORDERS not in received
    assert In.REQ_POSITIONS in received and In.REQ_EXECUTIONS in received
