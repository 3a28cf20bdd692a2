"""RuntimeHolder over real runtimes (SQLite ledger files, the ib_insync client, the simulator):
a cost-basis change applies in place; a database change swaps the runtime, closing the old one
and telling the subscribers in order; a ledger that cannot be opened changes nothing. No Qt."""

from __future__ import annotations

import pytest

from app.db import repository
from app.domain.values import CostBasis
from app.runtime import Runtime
from app.settings import Settings
from app.ui.runtime_holder import NotApplied, RuntimeHolder
from tests.ui.conftest import eventually


def test_settings_in_place_or_a_fresh_runtime(start_sim, run, tmp_path):
    sim = start_sim("basic")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        ib_port=sim.port,
        ib_client_id=24,
        ib_timeout=3.0,
        debounce_seconds=0.1,
        sync_interval=3600,
        cost_basis=CostBasis.AVERAGE,
    )
    first = Runtime.open(settings)
    holder = RuntimeHolder(first)
    told: list[tuple[str, Runtime | None]] = []
    holder.on_hook(lambda runtime: told.append(("hook", runtime)))

    async def leaving(old: Runtime) -> None:
        assert old.db.run_sync(repository.sync_runs) is not None  # still open while leaving
        told.append(("leaving", old))

    async def arrived(fresh: Runtime) -> None:
        assert holder.runtime is fresh  # in force before its listeners are hooked
        told.append(("arrived", fresh))

    async def basis_changed() -> None:
        told.append(("basis", None))

    holder.on_leaving(leaving)
    holder.on_arrived(arrived)
    holder.on_basis_changed(basis_changed)

    async def scenario():
        await holder.attach_broker()
        holder.hook()
        await first.service.start()
        await eventually(lambda: first.db.run_sync(repository.last_success))
        told.clear()

        # The cost basis: applied in place, the same runtime, its subscribers told.
        fifo = settings.model_copy(update={"cost_basis": CostBasis.FIFO, "sync_interval": 600})
        await holder.apply(fifo)
        assert holder.runtime is first
        assert first.settings.cost_basis is CostBasis.FIFO and first.requested is fifo
        assert first.service.options.interval == 600
        assert told == [("basis", None)]
        told.clear()

        # A ledger that cannot be opened: refused, the runtime in force untouched.
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the ledger's folder would be")
        broken = fifo.model_copy(update={"database_url": f"sqlite:///{blocked}/x.sqlite"})
        with pytest.raises(NotApplied):
            await holder.apply(broken)
        assert holder.runtime is first and first.requested is fifo and told == []

        # Another database: a fresh runtime; the old one stopped and closed.
        other = fifo.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'other.sqlite'}"})
        await holder.apply(other)
        fresh = holder.runtime
        assert fresh is not first and fresh.db.location.endswith("other.sqlite")
        assert told == [("leaving", first), ("arrived", fresh), ("hook", fresh)]
        with pytest.raises(RuntimeError, match="closed"):
            first.db.run_sync(repository.sync_runs)
        # Started: the fresh runtime syncs into the other ledger.
        await eventually(lambda: fresh.db.run_sync(repository.last_success), 15)

    try:
        run(scenario(), 45)
    finally:
        run(holder.runtime.service.stop())
        holder.runtime.close()
        first.close()
