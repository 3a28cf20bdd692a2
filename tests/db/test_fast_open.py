"""Opening a ledger already at head needs no Alembic (issue 19: the window paints sooner)."""

from __future__ import annotations

import subprocess
import sys

from app.db import migrate
from app.db.migrate import _current_head, head_revision, known_revisions, open_database


def test_the_scripts_head_read_without_alembic_is_alembics():
    assert _current_head() == head_revision()
    assert _current_head() in known_revisions()


def _imports_alembic_when_opening(path) -> bool:
    code = (
        "import sys\n"
        "from app.db.migrate import open_database\n"
        f"db = open_database({str(path)!r})\n"
        "db.close()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip() == "True"


def test_a_current_ledger_opens_without_alembic_a_new_one_with_it(tmp_path):
    path = tmp_path / "ledger.sqlite"
    assert _imports_alembic_when_opening(path)  # created and migrated: Alembic needed
    assert not _imports_alembic_when_opening(path)  # at head now: no Alembic at all
    database = open_database(path)
    try:
        assert migrate.current(path) == head_revision()
    finally:
        database.close()
