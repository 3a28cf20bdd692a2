"""The frozen desktop build (build_spec.py) really runs: CLI, migrations, demo sync, the window.

Runs only against the bundle that POSITION_SYNC_FROZEN names (`bash .ci/dev build` builds one,
packs it, unpacks the archive into a temporary folder and points this at that copy); without the
variable every test here is skipped. The program runs as a user would run it: from another
folder as its working directory, with a clean environment (no virtualenv, no PYTHONPATH, its own
HOME), offscreen unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import build_spec
from app import __version__
from app.db.migrate import head_revision, upgrade
from tests.db.conftest import query
from tests.db.test_migrations import seed_at_0001

_FROZEN = os.environ.get("POSITION_SYNC_FROZEN")
BUNDLE = Path(_FROZEN).resolve() if _FROZEN else Path()
ON_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = pytest.mark.skipif(
    not _FROZEN, reason="no bundle named: POSITION_SYNC_FROZEN=dist/position-sync (.ci/dev build)"
)

# What every Linux desktop has, and PyInstaller deliberately leaves to the system: glibc,
# OpenGL/EGL (libglvnd) and libxcb (tied to the X server). Everything else must be in the bundle.
LINUX_BASE = frozenset(
    {
        "linux-vdso",
        "ld-linux-x86-64",
        "ld-linux-aarch64",
        "libc",
        "libm",
        "libdl",
        "libpthread",
        "librt",
        "libresolv",
        "libGL",
        "libEGL",
        "libGLX",
        "libGLdispatch",
        "libOpenGL",
        "libxcb",
    }
)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_frozen(tmp_path: Path) -> Run:
    """run_frozen(*args, timeout=60, **env): the bundle's program, from tmp_path, output kept."""
    home = tmp_path / "home"
    home.mkdir()
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POSITION_SYNC_", "PYTHON", "QT_", "XDG_"))
        and name not in {"VIRTUAL_ENV", "LD_LIBRARY_PATH", "DISPLAY", "WAYLAND_DISPLAY"}
    }
    base.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        POSITION_SYNC_SETTINGS_FILE=str(home / "settings.json"),
        QT_QPA_PLATFORM="offscreen",
    )

    def run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(build_spec.executable(BUNDLE)), *args],
            cwd=tmp_path,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a run that must have exited 0 (its stderr shown when it did not)."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def table_definition(sql: str | None) -> object:
    """A CREATE statement as its head, its columns in order and its constraints as a set: the
    order of a table's constraints has no meaning and is not stable across processes. Alembic's
    batch mode (SQLite) rebuilds a table from `for const in self.table.constraints`, a set
    (alembic/operations/batch.py, ApplyBatchImpl._grab_table_elements), so two upgrades of the
    same file, one by the bundle and one by the source tree, can list the same CHECK and FOREIGN
    KEY clauses in different orders."""
    if sql is None or "(" not in sql:
        return sql
    head, _, body = sql.partition("(")
    clauses = [clause.strip() for clause in body.rstrip().removesuffix(")").split(", \n")]
    constraints = frozenset(c for c in clauses if c.startswith("CONSTRAINT "))
    return head, [c for c in clauses if c not in constraints], constraints


def dump(path: Path) -> dict[str, object]:
    """Schema and every row of every table of a SQLite file, in a comparable form."""
    connection = sqlite3.connect(path)
    try:
        schema = [
            (kind, name, table, table_definition(sql))
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            )
        ]
        tables = [row[1] for row in schema if row[0] == "table"]
        rows = {t: sorted(connection.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}
        return {"schema": schema, "rows": rows}
    finally:
        connection.close()


def loaded_libraries(stderr: str) -> set[Path]:
    """Libraries Qt reports loading (QT_DEBUG_PLUGINS=1)."""
    return {Path(p) for p in re.findall(r'"([^"]+)" loaded library', stderr)}


def test_bundle_is_complete_and_holds_no_stray_qt() -> None:
    """Guards against a bundle that lost its migrations, icon or Qt plugins, or collected all of
    PySide6 (QML, Quick, every plugin)."""
    assert build_spec.check_bundle(BUNDLE) == []


def test_version(run_frozen: Run) -> None:
    assert ok(run_frozen("--version")) == f"position-sync {__version__}\n"


def test_db_upgrade_creates_a_fresh_ledger(run_frozen: Run, tmp_path: Path) -> None:
    """The bundle carries every migration up to this source tree's head."""
    path = tmp_path / "new" / "ledger.sqlite"
    out = ok(run_frozen("db", "upgrade", "--db", str(path)))
    assert f"created {path} at revision {head_revision()} (head)" in out
    assert ok(run_frozen("db", "current", "--db", str(path))).strip() == f"{head_revision()} (head)"
    assert query(path, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_db_upgrade_keeps_a_seed_ledger(run_frozen: Run, tmp_path: Path) -> None:
    """Guards against migration scripts that import modules the bundle lacks (they are loaded
    from files): a 0001 database with rows upgrades exactly as the source tree upgrades it."""
    frozen = tmp_path / "frozen" / "ledger.sqlite"
    seed_at_0001(frozen)
    reference = tmp_path / "reference.sqlite"
    shutil.copyfile(frozen, reference)

    out = ok(run_frozen("db", "upgrade", "--db", str(frozen)))
    assert f"upgraded {frozen} from 0001 to {head_revision()}" in out
    assert "backup: " in out
    assert [p.name for p in frozen.parent.iterdir() if ".bak-0001-" in p.name]

    upgrade(reference)  # tests/db checks this result value by value
    assert dump(frozen) == dump(reference)
    assert len(query(frozen, "SELECT id FROM positions")) == 4


def test_sync_demo_prints_its_summary(run_frozen: Run, tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    out = ok(run_frozen("sync", "--demo", "--db", str(path)))
    assert out.startswith("sync ok (manual)") and "positions seen" in out
    status = json.loads(ok(run_frozen("status", "--json", "--db", str(path))))
    assert status["open_positions"] >= 10
    assert status["last_run"]["status"] == "ok"


def test_window_opens_offscreen_and_quits(run_frozen: Run, tmp_path: Path) -> None:
    """The window on the demo, offscreen: it syncs, loads Qt's plugins from the bundle only
    (the SVG icon engine included) and exits 0 when its timer closes it."""
    path = tmp_path / "window.sqlite"
    result = run_frozen(
        "gui", "--demo", "--db", str(path), "--quit-after", "8", timeout=120, QT_DEBUG_PLUGINS="1"
    )
    ok(result)
    assert query(path, "SELECT count(*) FROM sync_runs WHERE status = 'ok'")[0][0] >= 1
    loaded = loaded_libraries(result.stderr)
    assert {build_spec.plugin_name(p.name) for p in loaded} >= {"qoffscreen", "qsvgicon"}
    assert all(p.is_relative_to(BUNDLE) for p in loaded), loaded


@pytest.fixture
def x_display() -> Iterator[str]:
    """A throwaway X server (Xvfb) on a free display; its name (`:N`)."""
    if shutil.which("Xvfb") is None:
        if ON_CI:
            pytest.fail("Xvfb is missing: .ci/dev build installs it (Debian package xvfb)")
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # written once the server accepts clients
    try:
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 is Linux's window system")
def test_window_on_x11(run_frozen: Run, tmp_path: Path, x_display: str) -> None:
    """The window on a real X server through the bundle's xcb plugin, the way Linux users run it."""
    path = tmp_path / "x11.sqlite"
    result = run_frozen(
        "gui",
        "--demo",
        "--db",
        str(path),
        "--quit-after",
        "6",
        timeout=120,
        DISPLAY=x_display,
        QT_QPA_PLATFORM="xcb",
        QT_DEBUG_PLUGINS="1",
    )
    ok(result)
    assert query(path, "SELECT count(*) FROM sync_runs WHERE status = 'ok'")[0][0] >= 1
    loaded = loaded_libraries(result.stderr)
    assert "qxcb" in {build_spec.plugin_name(p.name) for p in loaded}
    assert all(p.is_relative_to(BUNDLE) for p in loaded), loaded


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd (Linux)")
def test_shared_libraries_need_only_the_base_system() -> None:
    """Guards against a bundle that works only where it was built: every shared library in it
    (Qt's xcb plugin needs libxcb-cursor0 and friends) resolves inside the bundle, apart from
    glibc, OpenGL/EGL and libxcb."""
    inside = build_spec.contents(BUNDLE)
    env = {"LD_LIBRARY_PATH": str(inside), "PATH": os.environ.get("PATH", "")}
    missing: set[str] = set()
    files = [build_spec.executable(BUNDLE)] + [
        p for p in inside.rglob("*.so*") if p.is_file() and not p.is_symlink()
    ]
    for library in files:
        result = subprocess.run(
            ["ldd", str(library)], capture_output=True, text=True, env=env, check=False
        )
        for line in result.stdout.splitlines():
            name, arrow, target = line.strip().partition(" => ")
            if not arrow:  # the vDSO and the dynamic loader itself
                continue
            soname = name.split("/")[-1]
            if "not found" in target:
                missing.add(f"{soname} (for {library.name})")
            elif not target.startswith(str(inside)) and soname.split(".so")[0] not in LINUX_BASE:
                missing.add(f"{soname} from {target.split(' ')[0] or 'the system'}")
    assert not missing, sorted(missing)
