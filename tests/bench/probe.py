"""Instruments one in-process sync stack, to split a sync into the broker's part and ours.

What counts as the app's own work in a full sync (DESIGN "Budgets"): everything except waiting
for the broker's bytes. It is measured as

    own = time inside our decoder hooks during the download (decoding position and portfolio
          rows into domain values, the LiveBook hand-off)
        + the tail: from the arrival of the snapshot's last message (executions end, the last
          request of a snapshot) to the published result (assemble, reconcile, the database
          transaction, the commit, the result listeners).

ib_insync's own framing and its handling of messages we forward count as the broker's part:
the floor (ib_insync alone receiving the same snapshot) pays them too. The database part is the
transaction on the database thread (BEGIN → COMMIT) minus reconcile.

The probe reaches into private attributes (the session's decoder, the Database's transaction
function); the smoke test in the normal suite keeps it from rotting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import app.db.repository.queries as queries_module
import app.db.repository.writes as writes_module
import app.domain.reconcile as reconcile_module
from app.broker.adapter import IbBroker
from app.db.database import Database

# Message ids our session hooks (app.broker.session): positions, account data, executions.
HOOKED = (15, 61, 62, 7, 54, 11, 55, 59)
EXECUTIONS_END = 55


@dataclass
class Phases:
    """Seconds spent in each part of the syncs since the last reset."""

    hooks: float = 0.0
    last_byte: float | None = None
    transaction: float = 0.0
    reconcile: float = 0.0
    load: float = 0.0
    apply: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class Probe:
    """Wraps the hooks and the ledger functions of one process; `reset()` before each sync."""

    def __init__(self) -> None:
        self.phases = Phases()
        self._patched: list[tuple[Any, str, Any]] = []

    def reset(self) -> None:
        self.phases = Phases()

    # ------------------------------------------------------------------ installation
    def install_ledger(self) -> None:
        """Time reconcile, load_state and apply_plan wherever the store calls them."""
        # The store imports reconcile when a sync first needs it (off the start-up path), from
        # its module each time: wrapped there.
        self._wrap(reconcile_module, "reconcile", "reconcile")
        self._wrap(queries_module, "load_state", "load")
        self._wrap(writes_module, "apply_plan", "apply")

    def install_db(self, db: Database) -> None:
        """Time every transaction of this Database (BEGIN to COMMIT, on its thread)."""
        original = db._in_transaction

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.phases.transaction += time.perf_counter() - started

        db._in_transaction = timed  # type: ignore[method-assign]

    def install_broker(self, broker: IbBroker) -> None:
        """Time our decoder hooks on the broker's current session (call once connected)."""
        session = broker._session
        if session is None:
            raise RuntimeError("the broker is not connected")
        handlers: dict[int, Callable[[list[str]], None]] = session.ib.client.decoder.handlers
        for msg_id in HOOKED:
            handlers[msg_id] = self._timed_handler(msg_id, handlers[msg_id])

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()

    # ------------------------------------------------------------------ wrappers
    def _timed_handler(
        self, msg_id: int, handler: Callable[[list[str]], None]
    ) -> Callable[[list[str]], None]:
        def timed(fields: list[str]) -> None:
            started = time.perf_counter()
            if msg_id == EXECUTIONS_END:
                self.phases.last_byte = started
            try:
                handler(fields)
            finally:
                self.phases.hooks += time.perf_counter() - started

        return timed

    def _wrap(self, owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                setattr(self.phases, phase, getattr(self.phases, phase) + elapsed)

        setattr(owner, name, timed)
        self._patched.append((owner, name, original))
