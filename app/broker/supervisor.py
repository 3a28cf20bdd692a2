"""The reconnect loop: connect, stay connected, and after any failure retry with backoff.

A TWS that is closed is the normal offline state (DISCONNECTED with a human message), not an
error: the loop keeps retrying with capped exponential backoff and jitter, and nothing escapes
it but cancellation (stop()). TWS's daily restart is just a drop followed by refusals.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from app.broker.session import ClientIdInUseError, IbSession
from app.domain.connection import ConnectionState, ConnectionStatus

logger = logging.getLogger(__name__)


class Backoff:
    """Capped exponential delays with jitter: 1, 2, 4 … `cap` s, each scaled by ±`jitter`."""

    def __init__(
        self,
        initial: float = 1.0,
        cap: float = 30.0,
        jitter: float = 0.2,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._rng = rng
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt (grows until `cap`)."""
        base = min(self.cap, self.initial * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        # Jitter spreads the reconnects of several workstations after a TWS restart.
        return max(0.0, base * (1 + self.jitter * (2 * self._rng() - 1)))

    def reset(self) -> None:
        self._attempt = 0


def failure_status(
    exc: BaseException, host: str, port: int, client_id: int, timeout: float
) -> ConnectionStatus:
    """The banner's wording for a failed connection attempt: what happened, what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, ClientIdInUseError):
        return ConnectionStatus(
            ConnectionState.CLIENT_ID_IN_USE,
            f"Client id {client_id} is already in use by another API client of TWS at {where}. "
            "Choose a free one with the ib_client_id setting (or --client-id); retrying slowly.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionStatus(
            ConnectionState.DISCONNECTED,
            f"TWS / IB Gateway is not running at {where}, or its API is not enabled "
            "(connection refused). Retrying in the background.",
        )
    if isinstance(exc, TimeoutError):
        return ConnectionStatus(
            ConnectionState.DISCONNECTED,
            f"TWS at {where} did not answer within {timeout:g} s. Retrying in the background.",
        )
    if isinstance(exc, OSError):  # ConnectionError is one too: closed during the handshake
        return ConnectionStatus(
            ConnectionState.DISCONNECTED,
            f"Cannot connect to TWS at {where}: {exc or type(exc).__name__}. Retrying.",
        )
    return ConnectionStatus(
        ConnectionState.DISCONNECTED,
        f"Connecting to TWS at {where} failed unexpectedly ({type(exc).__name__}). Retrying.",
    )


class Supervisor:
    """Runs one session at a time and reports every state change through `on_status`."""

    def __init__(
        self,
        make_session: Callable[[], IbSession],
        *,
        on_status: Callable[[ConnectionStatus], None],
        on_session: Callable[[IbSession | None], None],
        backoff: Backoff,
        client_id_retry: float,
        stable_after: float,
    ) -> None:
        self._make_session = make_session
        self._on_status = on_status
        self._on_session = on_session
        self._backoff = backoff
        self._client_id_retry = client_id_retry
        self._stable_after = stable_after

    async def run(self) -> None:
        """Connect and reconnect until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            session = self._make_session()
            try:
                await session.connect()
            except asyncio.CancelledError:
                await session.aclose("the broker adapter was stopped")
                raise
            except Exception as exc:
                await session.aclose("connecting failed")
                status = failure_status(
                    exc, session.host, session.port, session.client_id, session.timeout
                )
                if not isinstance(exc, OSError):  # OSError / TimeoutError are the expected ones
                    logger.error("connecting to TWS failed unexpectedly", exc_info=exc)
                else:
                    logger.debug("connecting to TWS failed: %s", status.message)
                self._on_status(status)
                delay = self._backoff.next()
                if status.state is ConnectionState.CLIENT_ID_IN_USE:
                    delay = max(delay, self._client_id_retry)
            else:
                started = loop.time()
                self._on_session(session)
                self._on_status(session.status())
                try:
                    reason = await session.wait_closed()
                finally:
                    self._on_session(None)
                    await session.aclose("the broker adapter was stopped")
                if loop.time() - started >= self._stable_after:
                    self._backoff.reset()  # a long-lived connection dropped: retry quickly
                logger.warning("%s; reconnecting", reason)
                self._on_status(
                    ConnectionStatus(
                        ConnectionState.DISCONNECTED,
                        "Lost the connection to TWS (it may be restarting). Reconnecting.",
                    )
                )
                delay = self._backoff.next()
            logger.debug("next connection attempt in %.1f s", delay)
            await asyncio.sleep(delay)
