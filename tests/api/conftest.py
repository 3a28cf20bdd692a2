"""The local API against the real service: a Runtime on a SQLite file, talking to the simulator
through ib_insync, and the API served on the test's loop; requests are real HTTP over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.api import ApiServer
from app.domain.connection import ConnectionState
from app.runtime import Runtime
from app.settings import Settings
from app.sim.runner import SimulatorThread

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(db: Path, sim_port: int, **overrides: Any) -> Settings:
    """Settings of a test runtime: its own ledger file, the simulator, the API on a free port."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{db}",
        "ib_port": sim_port,
        "ib_client_id": 31,
        "ib_timeout": 3.0,
        "sync_interval": 3600,
        "debounce_seconds": 0.1,
        "api_token": TOKEN,
        "api_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


async def until(condition: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll `condition()` until truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {within} s")


class Api:
    """A started runtime (broker connected, no automatic syncs) with the API served."""

    def __init__(self, runtime: Runtime, server: ApiServer, sim: SimulatorThread) -> None:
        self.runtime = runtime
        self.server = server
        self.sim = sim.sim
        self.url = server.urls[0]

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """One request on a fresh connection: (status, decoded JSON or text, response)."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=headers, **kw) as response,
        ):
            if response.content_type == "application/json":
                body: Any = await response.json()
            else:
                body = await response.text()
            return response.status, body, response


@pytest.fixture
def make_api(
    tmp_path: Path, loop: asyncio.AbstractEventLoop, start_sim: Callable[..., SimulatorThread]
) -> Iterator[Callable[..., Api]]:
    """make_api(scenario="basic", **settings) → an Api (stopped after the test); call in a run()."""
    made: list[tuple[Runtime, ApiServer]] = []

    async def make(scenario: str = "basic", **overrides: Any) -> Api:
        sim = start_sim(scenario)
        runtime = Runtime.open(settings_for(tmp_path / "ledger.sqlite", sim.port, **overrides))
        server = ApiServer(lambda: runtime, runtime.settings)
        made.append((runtime, server))
        status = await runtime.first_connection()
        assert status.state is ConnectionState.CONNECTED, status
        await server.start()
        return Api(runtime, server, sim)

    yield make  # type: ignore[misc]
    for runtime, server in made:
        loop.run_until_complete(server.stop())
        loop.run_until_complete(runtime.service.stop())
        runtime.close()
