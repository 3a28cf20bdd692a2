"""`position-sync db upgrade|current|backup` through app.cli.main.main."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.cli.exit_codes import ExitCode
from app.cli.main import main
from app.db.migrate import head_revision, upgrade
from tests.db.conftest import build_at, execute


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ledger.sqlite"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upgrade_creates_then_reports_head(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`db upgrade` creates a missing ledger; `db current` then says it is at head."""
    assert main(["db", "upgrade", "--db", str(db_path)]) == ExitCode.OK
    assert f"created {db_path} at revision {head_revision()}" in capsys.readouterr().out

    assert main(["db", "current", "--db", str(db_path)]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == f"{head_revision()} (head)"

    assert main(["db", "upgrade", "--db", str(db_path)]) == ExitCode.OK
    assert "already at revision" in capsys.readouterr().out


def test_db_option_is_accepted_before_and_after_the_action(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The common --db works on the bare command, on `db` and on the action."""
    upgrade(db_path)
    for argv in (
        ["--db", str(db_path), "db", "current"],
        ["db", "--db", str(db_path), "current"],
        ["db", "current", "--db", f"sqlite:///{db_path}"],
    ):
        assert main(argv) == ExitCode.OK
        assert capsys.readouterr().out.strip() == f"{head_revision()} (head)"


def test_current_on_old_and_missing_databases(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards against `current` creating a missing file; an old one is called out of date."""
    assert main(["db", "current", "--db", str(db_path)]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("none")
    assert not db_path.exists() and not db_path.parent.exists()

    build_at(db_path, "0001")
    assert main(["db", "current", "--db", str(db_path)]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("0001 (out of date")


def test_upgrade_of_old_database_prints_backup(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An out-of-date ledger is backed up, then migrated; the backup path is printed."""
    build_at(db_path, "0001")
    assert main(["db", "upgrade", "--db", str(db_path)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"from 0001 to {head_revision()}" in out
    backup_line = next(line for line in out.splitlines() if line.startswith("backup: "))
    assert Path(backup_line.removeprefix("backup: ")).exists()


def test_too_new_database_exits_4_and_stays_byte_identical(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards against stamping/downgrading/rewriting a database a newer version wrote."""
    upgrade(db_path)
    execute(db_path, "UPDATE alembic_version SET version_num = '9999'")
    before = digest(db_path)
    files = sorted(p.name for p in db_path.parent.iterdir())

    assert main(["db", "upgrade", "--db", str(db_path)]) == ExitCode.DATABASE
    err = capsys.readouterr().err
    assert str(db_path) in err and "9999" in err

    assert main(["db", "current", "--db", str(db_path)]) == ExitCode.OK
    assert "9999 (newer than this version" in capsys.readouterr().out

    assert digest(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == files


def test_corrupt_file_exits_4_untouched(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Guards against `db upgrade`/`backup`/`current` overwriting a file that is no database."""
    db_path.parent.mkdir()
    db_path.write_bytes(b"\x00garbage" * 1000)
    before = digest(db_path)
    for action in ("upgrade", "current", "backup"):
        assert main(["db", action, "--db", str(db_path)]) == ExitCode.DATABASE
        assert str(db_path) in capsys.readouterr().err
    assert digest(db_path) == before
    assert [p.name for p in db_path.parent.iterdir()] == [db_path.name]


def test_backup_prints_a_new_file(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`db backup` copies the ledger beside itself and prints the copy's path."""
    upgrade(db_path)
    assert main(["db", "backup", "--db", str(db_path)]) == ExitCode.OK
    copy = Path(capsys.readouterr().out.strip())
    assert copy.parent == db_path.parent and copy.name.startswith("ledger.sqlite.bak-")


def test_backup_of_missing_database_exits_4(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards against `db backup` creating an empty ledger just to copy it."""
    assert main(["db", "backup", "--db", str(db_path)]) == ExitCode.DATABASE
    assert "no database to back up" in capsys.readouterr().err
    assert not db_path.exists()


def test_default_url_comes_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --db the settings' database_url is used (here from the environment)."""
    target = tmp_path / "from-env.sqlite"
    monkeypatch.setenv("POSITION_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    monkeypatch.setenv("POSITION_SYNC_DATABASE_URL", f"sqlite:///{target}")
    assert main(["db", "upgrade"]) == ExitCode.OK
    assert target.exists()
    capsys.readouterr()


def test_missing_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`position-sync db` alone exits 2 with usage, not a traceback."""
    assert main(["db"]) == ExitCode.USAGE
    assert "usage" in capsys.readouterr().err
