"""Fixtures for the adapter tests: brokers that stop, and a recorder of what they report.

Everything is real: ib_insync over loopback sockets against app.sim's gateway simulator.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from app.broker import IbBroker
from app.domain.connection import BrokerEvent, ConnectionState, ConnectionStatus

T = TypeVar("T")


class Recorder:
    """A broker's status changes and events, with awaitable conditions."""

    def __init__(self, broker: IbBroker) -> None:
        self.broker = broker
        self.statuses: list[ConnectionStatus] = []
        self.events: list[BrokerEvent] = []
        broker.on_status(self.statuses.append)
        broker.on_event(self.events.append)

    def states(self) -> list[ConnectionState]:
        return [s.state for s in self.statuses]

    def connected_count(self) -> int:
        return self.states().count(ConnectionState.CONNECTED)

    async def until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until `condition()` holds (polled on the loop), or fail the test."""
        deadline = asyncio.get_running_loop().time() + within
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {within} s: {self.statuses}")
            await asyncio.sleep(0.01)

    async def until_state(self, state: ConnectionState, within: float = 5.0) -> None:
        await self.until(lambda: self.broker.status.state is state, within)


@pytest.fixture
def make_broker(
    loop: asyncio.AbstractEventLoop,
) -> Iterator[Callable[..., tuple[IbBroker, Recorder]]]:
    """make_broker(port, **kw) → (broker, recorder); every broker is stopped after the test."""
    made: list[IbBroker] = []

    def make(port: int, **options: Any) -> tuple[IbBroker, Recorder]:
        options.setdefault("client_id", 11)
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_initial", 0.05)
        options.setdefault("backoff_cap", 0.3)
        options.setdefault("client_id_retry", 0.2)
        broker = IbBroker("127.0.0.1", port, **options)
        made.append(broker)
        return broker, Recorder(broker)

    yield make
    for broker in made:
        loop.run_until_complete(asyncio.wait_for(broker.stop(), 10))


def free_port() -> int:
    """A loopback port nobody listens on (TWS "not running")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
