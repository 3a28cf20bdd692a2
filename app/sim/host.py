"""What one client connection needs of the simulator that accepted it, and what it shows back.

`ClientSession` (session.py) serves one socket; `GatewaySimulator` (server.py) owns every
session, the book and the fault switches. The session depends on these two protocols instead of
on the server class, so the server imports the session and nothing imports back (the
acyclic_siblings contract on app.sim in pyproject.toml keeps it so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.sim.faults import Faults
from app.sim.model import Execution, Holding
from app.sim.state import SimState


class Peer(Protocol):
    """What the server and the other sessions read of a connected session."""

    @property
    def conn_id(self) -> int: ...

    @property
    def client_id(self) -> int | None:
        """Set by startApi; None before it."""

    @property
    def ready(self) -> bool:
        """startApi accepted and the socket still open."""

    @property
    def closed(self) -> bool: ...

    @property
    def account_updates(self) -> str | None:
        """The account this session subscribed to with reqAccountUpdates, if any."""


class SessionHost(Protocol):
    """The simulator as a session sees it. Every member is used on the simulator's loop."""

    @property
    def state(self) -> SimState: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def max_frame(self) -> int:
        """Largest frame (bytes) a client may send before it is cut off as broken."""

    @property
    def handshake_timeout(self) -> float:
        """Seconds a new socket has to complete the API handshake."""

    def forget(self, session: Peer) -> None:
        """The session closed: no more pushes to it."""

    def record(self, session: Peer, msg_id: int) -> None:
        """Note a message the session received (the tests' inbound log)."""

    def client_id_in_use(self, client_id: int, asking: Peer) -> bool:
        """Another open, ready session already uses `client_id` (TWS answers 326)."""

    def ready_sessions(self) -> Sequence[Peer]:
        """Every session that completed startApi and is still open."""

    def shown(self, holding: Holding) -> Holding | None:
        """The holding as position rows show it now (None: no row yet; Faults.position_lag)."""

    def sees(self, client_id: int | None, execution: Execution) -> bool:
        """Whether a client id gets this execution (live and in reqExecutions answers)."""
