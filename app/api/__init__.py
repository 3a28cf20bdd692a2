"""The local HTTP API: trigger a sync and read the ledger from other tools on the workstation.

Served by aiohttp on the running asyncio loop (the window's qasync loop, or `position-sync
serve`'s), so a triggered sync is the same single-flight run the window's *Sync now* starts.
Off by default; loopback only unless allowed; every request carries the bearer token.
"""

from __future__ import annotations

from app.api.security import ApiSettingsError, ensure_api_token
from app.api.server import ApiServer

__all__ = ["ApiServer", "ApiSettingsError", "ensure_api_token"]
