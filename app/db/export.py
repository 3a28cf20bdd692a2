"""The ledger leaving the app: an export's rows read in one transaction, then written whole.

Shared by `position-sync export` and the window's File → Export (both above this layer). The
text itself comes from app.domain.export; this module owns the two steps that touch storage.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from app.db.lots import open_lots
from app.db.repository import queries
from app.domain.export import ExportKind, ExportTable, export_table


class ExportError(Exception):
    """The export file could not be written; nothing was left at (or beside) its path."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def read_export(
    session: Session, kind: ExportKind, account: str | None = None, as_of: datetime | None = None
) -> ExportTable:
    """The rows of one export, from one transaction (events and their lifecycles agree);
    `as_of`: the time lots' holding periods run to (now, by default)."""
    if kind is ExportKind.LOTS:
        when = as_of or datetime.now(UTC)
        return export_table(kind, lots=open_lots(session, account), account=account, as_of=when)
    if kind is ExportKind.FILLS:
        return export_table(kind, fills=queries.all_fills(session), account=account)
    lifecycles = queries.positions(session, include_closed=kind is not ExportKind.POSITIONS)
    events = queries.all_events(session) if kind is ExportKind.EVENTS else ()
    return export_table(kind, lifecycles=lifecycles, events=events, account=account)


def save_export(path: Path | str, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file in the same folder, then a rename.

    A failed export therefore never leaves half a file, nor replaces a good one. A new file gets
    mode 0600 like the ledger itself (it holds account numbers); a replaced one keeps its mode.
    Raises ExportError with a message naming the path.
    """
    path = Path(path)
    check_destination(path)
    folder = path.parent
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, before the rename)
            "w",
            encoding="utf-8",
            newline="",  # the text carries its own line ends (CSV: CRLF as RFC 4180 says)
            dir=folder,
            prefix=f".{path.name}.",
            suffix=".part",
            delete=False,
        )
    except OSError as exc:
        raise ExportError(f"cannot write the export to {path}: {_reason(exc)}", path) from exc
    temp = Path(handle.name)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(path.stat().st_mode))
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ExportError(
            f"cannot write the export to {path}: {_reason(exc)}; nothing was written", path
        ) from exc


def check_destination(path: Path) -> None:
    """Fail early (ExportError) for a path that names a folder or lies in a missing one."""
    if path.is_dir():
        raise ExportError(f"cannot write the export to {path}: it is a folder; name a file", path)
    if not path.parent.is_dir():
        raise ExportError(
            f"cannot write the export to {path}: the folder {path.parent} does not exist", path
        )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
