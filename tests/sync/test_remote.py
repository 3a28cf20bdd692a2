"""The syncer's loopback endpoint (app.sync.remote) with bad and refused requests.

The endpoint runs for real on 127.0.0.1; what it calls is a plain recorder here, because this is
about the wire: the token, garbage, a malformed Mark closed, and how each refusal of the write
reaches the viewer. The whole path — a viewer window whose Mark closed the syncing window writes
through its LedgerWriter, refused when a sync moved the lifecycle — is in
tests/ui/test_viewer_window.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.db.sync_lock import read_holder
from app.domain.manual import (
    LifecycleChangedError,
    LifecycleVersion,
    MarkClosedError,
    MarkClosedRequest,
)
from app.domain.values import CloseReason, SyncStatus, SyncTrigger
from app.runtime import Runtime
from app.settings import Settings
from app.sync.remote import (
    HOST,
    SyncEndpoint,
    SyncerUnreachableError,
    close_from_json,
    close_json,
    request_mark_closed,
    request_sync,
)
from app.sync.results import SyncResult

CLOSE = MarkClosedRequest(
    LifecycleVersion(7, "DU1111111", "SAP", Decimal("20.0"), Decimal("-0.35"), 42),
    Decimal("190.125"),
    datetime(2026, 12, 4, 21, 30, tzinfo=timezone(timedelta(hours=-5))),
    "=closed by hand",
)


class Syncer:
    """What the endpoint calls: records the requests; `refuse` makes the write raise."""

    def __init__(self) -> None:
        self.syncs = 0
        self.closes: list[MarkClosedRequest] = []
        self.refuse: Exception | None = None

    async def sync(self) -> SyncResult:
        self.syncs += 1
        now = datetime.now(UTC)
        return SyncResult(SyncTrigger.MANUAL, SyncStatus.OK, now, now, run_id=self.syncs)

    async def mark_closed(self, request: MarkClosedRequest) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.closes.append(request)


@pytest.fixture
def endpoint(run):
    syncer = Syncer()
    served = SyncEndpoint(syncer.sync, syncer.mark_closed)
    run(served.start())
    yield served, syncer
    run(served.stop())


async def _raw(port: int, line: bytes) -> dict:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(line)
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return json.loads(answer)


def test_a_close_crosses_the_wire_exactly():
    again = close_from_json(json.loads(json.dumps(close_json(CLOSE))))
    assert again == CLOSE
    assert str(again.seen.quantity) == "20.0" and again.at.utcoffset() == timedelta(hours=-5)


def test_a_viewers_close_is_written_by_the_syncer(endpoint, run):
    served, syncer = endpoint
    run(request_mark_closed(served.port, served.token, CLOSE, 5))
    assert syncer.closes == [CLOSE] and syncer.syncs == 0
    result = run(request_sync(served.port, served.token, 5))
    assert result.ok and result.run_id == 1


def test_each_refusal_reaches_the_viewer_as_the_write_would_raise_it(endpoint, run):
    served, syncer = endpoint
    syncer.refuse = LifecycleChangedError("SAP in DU1111111 changed: a sync booked a fill")
    with pytest.raises(LifecycleChangedError, match="a sync booked a fill"):
        run(request_mark_closed(served.port, served.token, CLOSE, 5))
    syncer.refuse = MarkClosedError("this position is already closed")
    with pytest.raises(MarkClosedError, match="already closed") as raised:
        run(request_mark_closed(served.port, served.token, CLOSE, 5))
    assert not isinstance(raised.value, LifecycleChangedError)
    syncer.refuse = OSError("database or disk is full")
    with pytest.raises(MarkClosedError, match="disk is full"):
        run(request_mark_closed(served.port, served.token, CLOSE, 5))
    assert syncer.closes == []


def test_a_wrong_token_is_refused_and_nothing_is_done(endpoint, run):
    served, syncer = endpoint
    with pytest.raises(SyncerUnreachableError, match="wrong token"):
        run(request_mark_closed(served.port, "not-the-token", CLOSE, 5))
    with pytest.raises(SyncerUnreachableError, match="wrong token"):
        run(request_sync(served.port, "not-the-token", 5))
    assert syncer.closes == [] and syncer.syncs == 0


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"\x00\xff garbage\n", "not a sync request"),
        (b'{"token": "T", "request": "format_disk"}\n', "unknown request 'format_disk'"),
        (b'{"token": "T", "request": "mark_closed"}\n', "not a Mark closed request"),
        (b'{"token": "T", "request": "mark_closed", "close": {"at": "x"}}\n',
         "not a Mark closed request"),
    ],
)  # fmt: skip
def test_garbage_and_malformed_requests_are_answered_and_the_endpoint_goes_on(
    endpoint, run, line, error
):
    served, syncer = endpoint
    answer = run(_raw(served.port, line.replace(b'"T"', json.dumps(served.token).encode())))
    assert answer == {"error": error}
    assert syncer.closes == [] and syncer.syncs == 0
    run(request_mark_closed(served.port, served.token, CLOSE, 5))  # still serving
    assert syncer.closes == [CLOSE]


def test_a_close_without_its_time_zone_or_with_a_bad_number_is_not_taken(endpoint, run):
    served, syncer = endpoint
    for change in ({"at": "2026-12-04T21:30:00"}, {"exit_price": "12,5"}, {"quantity": None}):
        close = {**close_json(CLOSE), **change}
        request = {"token": served.token, "request": "mark_closed", "close": close}
        answer = run(_raw(served.port, json.dumps(request).encode() + b"\n"))
        assert answer == {"error": "not a Mark closed request"}, change
    assert syncer.closes == []


def test_no_syncer_listening_is_unreachable(run):
    async def closed_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, HOST, 0)
        port = int(server.sockets[0].getsockname()[1])
        server.close()
        await server.wait_closed()
        return port

    port = run(closed_port())
    with pytest.raises(SyncerUnreachableError, match="no sync endpoint"):
        run(request_mark_closed(port, "token", CLOSE, 5))


def test_a_close_written_for_a_viewer_tells_the_syncers_own_views(tmp_path, run, start_sim):
    """Guards: the syncing window still showing OPEN a position a viewer's Mark closed closed
    (nothing else reloads it before the next sync). A real Runtime syncs the simulator's book
    into a real SQLite ledger; the request arrives over its published endpoint."""
    sim = start_sim("basic")
    db = tmp_path / "ledger.sqlite"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        ib_port=sim.port,
        ib_client_id=51,
        ib_timeout=3.0,
        sync_interval=3600,
        debounce_seconds=0.1,
    )
    runtime = Runtime.open(settings)
    try:
        told: list[int] = []
        runtime.ownership.on_ledger_changed(lambda: told.append(1))
        run(runtime.start(), 30)
        assert not runtime.viewer
        run(runtime.first_connection(), 30)
        assert run(runtime.sync_now(), 30).ok
        sap = next(
            p
            for p in run(runtime.reader.positions())
            if p.account == "DU1111111" and p.contract.symbol == "SAP"
        )
        last = run(runtime.reader.events(sap.id))[-1].id
        close = MarkClosedRequest(
            LifecycleVersion.of(sap, last), Decimal("191"), datetime.now(UTC), "from a viewer"
        )
        holder = read_holder(db)
        assert holder is not None and holder.port and holder.token
        assert told == []
        run(request_mark_closed(holder.port, holder.token, close, 10))
        assert told == [1]
        (closed,) = [
            p for p in run(runtime.reader.positions(include_closed=True)) if p.id == sap.id
        ]
        assert not closed.is_open and closed.close_reason is CloseReason.MANUAL
        # The same close again: the lifecycle is no longer what the viewer saw.
        with pytest.raises(MarkClosedError):
            run(request_mark_closed(holder.port, holder.token, close, 10))
        assert told == [1]
    finally:
        run(runtime.stop(), 30)
        runtime.close()
