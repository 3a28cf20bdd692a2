"""Every user setting, declared once and typed (env `POSITION_SYNC_*`, a settings file, flags).

How to add a setting: add a field with its default and a one-line description below; the CLI
flags and the settings dialog read this class, so nothing else needs to change for it to load.
Precedence, lowest first: defaults → settings file → environment → command-line flags.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.domain.values import CostBasis

APP_NAME = "position-sync"


def user_data_dir() -> Path:
    """The platform's per-user data folder for this app (not created here)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_database_url() -> str:
    """A SQLite file in the user data folder."""
    return f"sqlite:///{user_data_dir() / 'ledger.sqlite'}"


def default_settings_file() -> Path:
    """`settings.json` in the platform's per-user config folder (overridable by env)."""
    override = os.environ.get("POSITION_SYNC_SETTINGS_FILE")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "settings.json"


def local_timezone_name() -> str:
    """This machine's IANA time zone name; "UTC" when the system does not name one.

    The standard library has no call for it: the `TZ` variable, Debian's /etc/timezone and the
    /etc/localtime link (Linux, macOS) are read in that order. Windows names no IANA zone; there,
    and wherever none of these gives a known name, it is UTC. The sync logs the zone it reads
    zone-less execution times in, so a wrong default never goes unnoticed (set tws_timezone).
    """
    candidates: list[str] = []
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        candidates.append(env)
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
        try:
            target = str(Path("/etc/localtime").resolve())
        except OSError:
            target = ""
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name and _known_zone(name):
            return name
    return "UTC"


def _known_zone(name: str) -> bool:
    # ZoneInfo also accepts absolute paths and "posixrules"-like files: only names count.
    if name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class Settings(BaseSettings):
    """User preferences. Window geometry lives in QSettings, not here."""

    model_config = SettingsConfigDict(env_prefix="POSITION_SYNC_", extra="ignore")

    # The seed plan's settings.
    enabled: bool = Field(True, description="Run the sync service at all.")
    sync_interval: float = Field(300.0, gt=0, description="Seconds between periodic full syncs.")
    sync_on_trade: bool = Field(True, description="Sync shortly after an execution arrives.")
    sync_on_position_update: bool = Field(True, description="Sync after a position update.")
    mark_missing_as_closed: bool = Field(
        False, description="Close positions the broker stops reporting (off: warn only)."
    )
    calculate_realized_pnl: bool = Field(True, description="Compute realized P&L on reductions.")
    cost_basis: CostBasis = Field(
        CostBasis.AVERAGE,
        description="Which realized P&L totals show: average (as TWS) or fifo (IB's tax lots).",
    )

    # Connection.
    ib_host: str = Field("127.0.0.1", description="TWS / IB Gateway host.")
    ib_port: int = Field(7497, ge=1, le=65535, description="TWS / IB Gateway API port.")
    ib_client_id: int = Field(
        0,
        ge=0,
        description="API client id. Manual TWS fills reach only client id 0 or the Master API id.",
    )
    ib_account: str = Field("", description="Limit to one account code (empty: every account).")
    ib_timeout: float = Field(10.0, gt=0, description="Seconds to wait for TWS to answer.")
    tws_timezone: str = Field(
        default_factory=local_timezone_name,
        description="IANA time zone of the TWS login (its login dialog's time zone), e.g. "
        "America/New_York: execution times TWS sends without a zone are read in it (default: "
        "this machine's zone). Times that name their zone are read in that zone.",
    )

    # Storage and timing.
    database_url: str = Field(default_factory=default_database_url, description="SQLAlchemy URL.")
    debounce_seconds: float = Field(
        1.0, ge=0, description="Quiet time after broker events before an event-driven sync."
    )

    # Local API (app.api): off by default; `position-sync serve` always serves it.
    api_enabled: bool = Field(False, description="Serve the local HTTP API from the window.")
    api_host: str = Field(
        "127.0.0.1", description="Address the API binds to (loopback unless api_allow_remote)."
    )
    api_port: int = Field(8765, ge=0, le=65535, description="API port (0: any free port).")
    api_token: str = Field(
        "",
        repr=False,  # never in logs or tracebacks
        description="Bearer token every API request must carry (generated and saved here when "
        "the API starts without one).",
    )
    api_allow_remote: bool = Field(
        False, description="Allow api_host to be a non-loopback address (plain HTTP: see README)."
    )

    # Desktop notifications (the window's system tray).
    notify_missing: bool = Field(True, description="Notify when a position goes missing at IB.")
    notify_sync_failures: bool = Field(
        True, description="Notify when syncing fails notify_failure_threshold times in a row."
    )
    notify_failure_threshold: int = Field(
        3, ge=1, description="Failed syncs in a row before notify_sync_failures notifies."
    )
    notify_disconnect: bool = Field(
        True,
        description="Notify when TWS or its link to IB drops unasked during US market hours "
        "(09:30-16:00 America/New_York, Monday to Friday; holidays not excluded).",
    )
    notify_pnl_mismatch: bool = Field(
        True, description="Notify when our realized P&L differs from IB's for a fill."
    )

    # IB Flex statements (`position-sync flex import|fetch`).
    flex_token: str = Field(
        "",
        repr=False,  # a secret: never in logs, output or tracebacks
        description="Flex Web Service token (Client Portal → Flex Web Service Configuration).",
    )
    flex_query_id: str = Field("", description="Query ID of the Activity Flex Query to fetch.")
    flex_url: str = Field(
        "https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService",
        description="Flex Web Service address (SendRequest and GetStatement below it).",
    )
    flex_timezone: str = Field(
        "America/New_York",
        description="IANA time zone of the times in Flex statements (IB reports in US Eastern "
        "time unless the statement names another zone).",
    )

    @field_validator("ib_host", "api_host")
    @classmethod
    def _host_not_empty(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError(f"{info.field_name} must not be empty")
        return value.strip()

    @field_validator("tws_timezone", "flex_timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        name = value.strip()
        if not _known_zone(name):
            raise ValueError(
                f"{name!r} is not an IANA time zone name (e.g. America/New_York, Europe/London)"
            )
        return name

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import JsonConfigSettingsSource

        json_source = JsonConfigSettingsSource(settings_cls, json_file=default_settings_file())
        return (init_settings, env_settings, json_source)


def load_settings(**overrides: Any) -> Settings:
    """Settings from file and environment, with non-None `overrides` (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write `settings` as the settings file (mode 0600); returns its path.

    Environment variables still win over the file at the next start, as documented.
    """
    import json

    target = path or default_settings_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = settings.model_dump(mode="json")
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(temporary, target)  # atomic: a crash leaves the old file or the new one
    return target
