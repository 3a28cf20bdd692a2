"""Run the simulator in a daemon thread with its own event loop (tests, `--demo`, the CLI)."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType
from typing import Any

from app.sim.faults import Faults
from app.sim.scenarios import Scenario, get_scenario
from app.sim.server import GatewaySimulator
from app.sim.state import SimState

logger = logging.getLogger(__name__)


class SimulatorThread:
    """The simulator on a free port in a background thread; also a context manager.

    `thread.sim` is the GatewaySimulator: its control methods are thread-safe, so a test or
    the Qt thread calls `thread.sim.fill(...)`, `thread.sim.restart()` directly.
    """

    def __init__(
        self,
        scenario: str | Scenario | None = "basic",
        *,
        state: SimState | None = None,
        faults: Faults | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        start_timeout: float = 10.0,
        run_driver: bool = True,
        **server_options: Any,
    ) -> None:
        if isinstance(scenario, str):
            scenario = get_scenario(scenario)
        self.scenario = scenario
        if state is None:
            state = scenario.build() if scenario is not None else SimState()
        if faults is None:
            faults = scenario.faults() if scenario is not None else Faults()
        self.sim = GatewaySimulator(state, host=host, port=port, faults=faults, **server_options)
        self._start_timeout = start_timeout
        self._run_driver = run_driver
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("simulator thread not started")
        return self._loop

    def start(self) -> SimulatorThread:
        """Start the thread and wait until the server listens (raises if it cannot)."""
        self._thread = threading.Thread(target=self._run, name="tws-simulator", daemon=True)
        self._thread.start()
        if not self._started.wait(self._start_timeout):
            raise TimeoutError("simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._boot())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _boot(self) -> None:
        await self.sim.start()
        if self._run_driver and self.scenario is not None and self.scenario.driver is not None:
            self.sim.spawn(self.scenario.driver(self.sim), name=f"driver:{self.scenario.name}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.sim.stop(), loop)
        try:
            future.result(timeout)
        except Exception:
            logger.exception("simulator did not stop cleanly")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> GatewaySimulator:
        self.start()
        return self.sim

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_demo(scenario: str = "demo", port: int = 0) -> tuple[int, SimulatorThread]:
    """For `--demo`: the simulator in-process on a free port; returns (port, handle to stop)."""
    thread = SimulatorThread(scenario, port=port).start()
    logger.info("demo gateway (%s) on 127.0.0.1:%s", scenario, thread.port)
    return thread.port, thread
