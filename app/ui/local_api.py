"""The local API in the window: started after the window is live when `api_enabled` is on.

API settings take effect when the window starts; a refused start (no token can be saved, a
non-loopback host without api_allow_remote, a port in use) leaves the window working and says
why in the status bar.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.api import ApiServer, ApiSettingsError, ensure_api_token

if TYPE_CHECKING:
    from app.ui.controller import WindowController

log = logging.getLogger(__name__)

STATUS_BAR_MS = 30_000


async def start_api(controller: WindowController) -> ApiServer | None:
    """Serve the API for the controller's runtime (whichever it holds at each request)."""
    runtime = controller.runtime
    if not runtime.settings.api_enabled:
        return None
    bar = controller.window.statusBar()
    try:
        settings, saved = ensure_api_token(runtime.settings)
        server = ApiServer(lambda: controller.runtime, settings)
        await server.start()
    except ApiSettingsError as exc:
        log.error("local API not started: %s", exc)
        bar.showMessage(f"Local API not started: {exc}")
        return None
    if saved is not None:
        # The settings dialog saves what it was given: it must hold the new token too.
        token = {"api_token": settings.api_token}
        runtime.requested = runtime.requested.model_copy(update=token)
        runtime.settings = runtime.settings.model_copy(update=token)
        bar.showMessage(
            f"Local API on {server.urls[0]}; a new token was saved as api_token in {saved}",
            STATUS_BAR_MS,
        )
    else:
        bar.showMessage(f"Local API on {server.urls[0]}", STATUS_BAR_MS)
    return server
