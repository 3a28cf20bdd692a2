"""The window as a viewer: another process syncs its SQLite ledger (app.ownership).

The window then reads the ledger (reloading when that process commits); its Sync now and Mark
closed are asked of that process, which writes them; a statement import is refused with a
message naming the process that owns the ledger's writes. It takes over when that process exits.
"""

from __future__ import annotations

from app.runtime import Runtime


def write_refusal(runtime: Runtime) -> str | None:
    """Why this window may not write the ledger now (another process syncs it), or None."""
    if not runtime.viewer:
        return None
    return (
        f"{runtime.ownership.syncing_process()} syncs {runtime.db.location} and owns its writes; "
        "this window only reads that ledger. Do this there — or quit it: this window takes over "
        "syncing (and writing) a second or two after it exits."
    )


def syncer_text(runtime: Runtime) -> str | None:
    """Who syncs the ledger, for the banner, while this window is a viewer; else None."""
    return runtime.ownership.syncing_process() if runtime.viewer else None
