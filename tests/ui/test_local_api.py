"""The local API served from the window, on the qasync loop (as `run_window` starts it)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp

from app.sim.runner import SimulatorThread
from app.ui.local_api import start_api
from tests.ui.conftest import eventually
from tests.ui.test_window import book


def test_the_window_serves_the_api_on_its_qasync_loop(make_app, qloop):
    settings_file = Path(os.environ["POSITION_SYNC_SETTINGS_FILE"])
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port, api_enabled=True, api_port=0)

        async def scenario():
            await app.start()
            server = await start_api(app.controller)
            assert server is not None
            try:
                # No token was set: one was generated, saved, and kept for the settings dialog.
                token = json.loads(await asyncio.to_thread(settings_file.read_text))["api_token"]
                assert app.controller.runtime.requested.api_token == token
                message = app.window.statusBar().currentMessage()
                assert server.urls[0] in message and str(settings_file) in message
                assert token not in message
                await eventually(lambda: app.controller.state.last_synced is not None, 15)
                async with (
                    aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
                    http.post(server.urls[0] + "/api/sync/positions") as response,
                ):
                    assert response.status == 200
                    assert (await response.json())["ok"] is True
                # The window saw the API's run like any other (its sync log shows it).
                await eventually(lambda: app.controller.state.last_result.trigger.value == "manual")
            finally:
                await server.stop()
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_a_refused_api_leaves_the_window_working(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port, api_enabled=True, api_host="0.0.0.0", api_token="x" * 20)

        async def scenario():
            await app.start()
            assert await start_api(app.controller) is None
            message = app.window.statusBar().currentMessage()
            assert message.startswith("Local API not started") and "api_allow_remote" in message
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_the_api_is_off_by_default(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)

        async def scenario():
            await app.start()
            assert await start_api(app.controller) is None
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
