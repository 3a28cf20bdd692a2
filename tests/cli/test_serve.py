"""`position-sync serve`: the headless service plus the local API, as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from app.cli.main import main


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--db", str(tmp_path / "l.sqlite"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for_url(process: subprocess.Popen, seen: list[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"local API on (http://\S+?)[ ,]", line)
        if found:
            return found.group(1)
    raise AssertionError(f"no API announcement: {seen}")


def test_serve_generates_a_token_serves_and_stops_on_ctrl_c(tmp_path):
    settings_file = Path(os.environ["POSITION_SYNC_SETTINGS_FILE"])
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps({"sync_interval": 600}))
    process = _serve(tmp_path, "--demo", "--api-port", "0")
    stderr: list[str] = []
    try:
        url = _wait_for_url(process, stderr)
        saved = json.loads(settings_file.read_text())
        token = saved["api_token"]
        assert len(token) >= 32 and saved["sync_interval"] == 600  # other keys kept
        assert settings_file.stat().st_mode & 0o777 == 0o600
        assert f"saved it as api_token in {settings_file}" in "".join(stderr)
        assert requests.get(url + "/api/sync/status", timeout=10).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(40):  # the API answers at once; the demo gateway connects a moment later
            answer = requests.post(url + "/api/sync/positions", headers=auth, timeout=30)
            assert answer.status_code == 200
            if answer.json()["ok"]:
                break
            assert answer.json()["status"] == "skipped"
            time.sleep(0.25)
        assert answer.json()["ok"] is True
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "sync ok (manual)" in out
    assert token not in out + err + "".join(stderr)


def test_serve_refuses_a_non_loopback_host(tmp_path, capsys):
    code = main(["serve", "--demo", "--db", str(tmp_path / "l.sqlite"), "--api-host", "0.0.0.0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "not a loopback address" in err and "api_allow_remote" in err


def test_serve_refuses_a_weak_token(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POSITION_SYNC_API_TOKEN", "short")
    assert main(["serve", "--db", str(tmp_path / "l.sqlite")]) == 2
    assert "api_token must be at least 16" in capsys.readouterr().err
