"""Who may use the local API: the bind address check, the bearer token, and its first creation.

A local API that can trigger syncs and read the ledger is for this workstation: it binds to
loopback addresses only unless `api_allow_remote` is on, and every request carries the token
from the settings (compared in constant time; never logged, never echoed).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import secrets
import socket
from pathlib import Path

from app.settings import Settings, default_settings_file

MIN_TOKEN_LENGTH = 16
TOKEN_ENV = "POSITION_SYNC_API_TOKEN"


class ApiSettingsError(Exception):
    """The API cannot start with these settings; the message says which one to change."""


def check_token(token: str) -> None:
    """Refuse a token that is missing, short, or not plain printable ASCII (header-safe)."""
    if not token:
        raise ApiSettingsError(
            f"api_token is not set: set it in the settings file or {TOKEN_ENV} "
            "(the window and `position-sync serve` generate one when they can save it)"
        )
    if len(token) < MIN_TOKEN_LENGTH or not all(33 <= ord(ch) <= 126 for ch in token):
        raise ApiSettingsError(
            f"api_token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without "
            "spaces (remove it from the settings to have a strong one generated)"
        )


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header value is `Bearer <token>` (constant-time compare)."""
    if not authorization or not token:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # surrogateescape: aiohttp keeps undecodable header bytes as lone surrogates.
    offered = given.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(offered, token.encode("utf-8"))


def is_loopback(address: str) -> bool:
    """Whether an IP address literal is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


async def bind_addresses(host: str, port: int, *, allow_remote: bool) -> list[str]:
    """The IP addresses `host` names, checked: all loopback unless `allow_remote`.

    The server binds to exactly these addresses (not to `host` again), so a name that resolves
    differently a moment later cannot widen the bind.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise ApiSettingsError(f"api_host {host!r} cannot be resolved: {exc}") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ApiSettingsError(f"api_host {host!r} resolves to no address")
    remote = [a for a in addresses if not is_loopback(a)]
    if remote and not allow_remote:
        raise ApiSettingsError(
            f"api_host {host!r} is not a loopback address ({', '.join(remote)}): the API would "
            "be reachable from other machines, over plain HTTP. Use 127.0.0.1, or set "
            "api_allow_remote to true if that is really wanted (see the README's security notes)"
        )
    return addresses


def ensure_api_token(settings: Settings, path: Path | None = None) -> tuple[Settings, Path | None]:
    """`settings` with an API token: theirs, or a new one saved as `api_token` in the settings
    file (mode 0600; other keys kept). Returns the settings and the file written, if any.

    Raises ApiSettingsError when there is none and it cannot be saved.
    """
    if settings.api_token:
        return settings, None
    if os.environ.get(TOKEN_ENV) is not None:
        raise ApiSettingsError(f"{TOKEN_ENV} is set but empty: give it a token or unset it")
    target = path or default_settings_file()
    token = secrets.token_urlsafe(32)
    try:
        data = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
        if not isinstance(data, dict):
            raise ValueError("it does not hold a JSON object")
        data["api_token"] = token
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(temporary, target)  # atomic: the old file or the new one
    except (OSError, ValueError) as exc:
        raise ApiSettingsError(
            f"api_token is not set and a new one could not be saved to {target}: {exc}. "
            f"Set api_token in the settings file or {TOKEN_ENV}"
        ) from exc
    return settings.model_copy(update={"api_token": token}), target
