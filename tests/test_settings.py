"""The tws_timezone setting: validated IANA name, this machine's zone by default, and a wrong
name stopping the CLI as an invalid setting (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.cli.main import main
from app.settings import Settings, local_timezone_name


def test_default_is_this_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    assert local_timezone_name() == "Asia/Kolkata" and Settings().tws_timezone == "Asia/Kolkata"
    monkeypatch.setenv("TZ", ":Europe/Paris")  # POSIX allows the leading colon
    assert Settings().tws_timezone == "Europe/Paris"
    monkeypatch.delenv("TZ")
    name = Settings().tws_timezone
    ZoneInfo(name)  # whatever the system says, a name the tz database knows


def test_a_bogus_tz_variable_is_not_taken_for_a_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "/etc/passwd")
    monkeypatch.setattr("sys.platform", "win32")  # no system files to fall back on
    assert local_timezone_name() == "UTC"


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "EST+5", "../etc/passwd", "/etc/passwd"])
def test_an_unknown_zone_is_a_settings_error(name: str) -> None:
    with pytest.raises(ValidationError, match="tws_timezone"):
        Settings(tws_timezone=name)


def test_a_known_zone_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(tws_timezone=" America/Chicago ").tws_timezone == "America/Chicago"
    monkeypatch.setenv("POSITION_SYNC_TWS_TIMEZONE", "Europe/London")
    assert Settings().tws_timezone == "Europe/London"


def test_cli_refuses_an_unknown_zone_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POSITION_SYNC_TWS_TIMEZONE", "Mars/Olympus")
    assert main(["status", "--db", str(tmp_path / "l.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "invalid setting" in err and "tws_timezone" in err and "Mars/Olympus" in err
