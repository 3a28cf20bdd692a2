"""The fence around ib_insync's internals (app.broker.ib_internals) still fits the installed
ib_insync: this module fails loudly on an ib_insync upgrade.

Two layers. The version test fails on any release other than the one the fence was verified
against. Independently of the version, every other test checks one internal the fence relies on
(numbered as in the fence's docstring) on the real classes and objects — a real IB(), its Client,
Connection, Decoder and Wrapper — and, where a shape is not enough, its behaviour over a real
loopback socket (a simulator, or a plain asyncio server). A failure names what to re-read.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eventkit import Event
from ib_insync import IB, Client, Wrapper
from ib_insync.connection import Connection
from ib_insync.decoder import Decoder

from app.broker import ib_internals as fence
from app.sim.requests import In
from app.sim.runner import SimulatorThread
from tests.broker.conftest import free_port

pytestmark = pytest.mark.timeout(30)

RE_READ = "re-read internal {n} of app.broker.ib_internals' docstring against the new ib_insync"


def params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (annotations aside: ours are strings)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def source(function: Callable[..., Any]) -> str:
    return inspect.getsource(function)


@pytest.fixture
def ib() -> Iterator[IB]:
    made = IB()
    yield made
    made.disconnect()


def test_the_installed_ib_insync_is_the_verified_release() -> None:
    installed = importlib.metadata.version("ib_insync")
    assert installed == fence.VERIFIED_VERSION, (
        f"ib_insync {installed} is installed, but app.broker.ib_internals was verified against "
        f"{fence.VERIFIED_VERSION}. Re-read every internal its docstring lists in the new "
        "release (IB.connectAsync's steps, IB.reqAutoOpenOrders' call site, IB._onError, "
        "Decoder.handlers and the hooked ids, Client's API versions, Connection's "
        "disconnected/transport/connection_made, Client.sendMsg and Connection.sendMsg, the "
        "logger names and connect-failure texts, Wrapper._endReq), run tests/broker and "
        "tests/sync, then set VERIFIED_VERSION."
    )
    import ib_insync

    assert ib_insync.__version__ == installed  # the module imported is the one installed


# ---------------------------------------------------------------- 1. connect_api
def test_connect_api_copies_the_steps_of_ib_connect(ib: IB) -> None:
    """connect_api does IB.connectAsync's first and last steps; they must still be these."""
    why = RE_READ.format(n=1)
    assert params(Client.connectAsync) == ["self", "host", "port", "clientId", "timeout"], why
    assert isinstance(ib.client, Client), why
    assert ib.wrapper.clientId == -1, why  # the Wrapper's own attribute, set before connecting
    assert isinstance(ib.connectedEvent, Event), why
    steps = source(IB.connectAsync)
    for step in (
        "self.wrapper.clientId = clientId",
        "await self.client.connectAsync(host, port, clientId, timeout)",
        "self.client.isReady()",
        "self.connectedEvent.emit()",
        "self.disconnect()",
        # The reason connect_api exists: IB.connectAsync waits for the executions' end.
        "await asyncio.wait_for(self.reqExecutionsAsync(), timeout)",
    ):
        assert step in steps, f"IB.connectAsync no longer does {step!r}: {why}"


def test_on_a_live_socket_the_fenced_calls_behave(
    run: Callable[..., Any], start_sim: Callable[..., SimulatorThread]
) -> None:
    """connect_api sends only the handshake; the socket reads READ_CHUNK at a time; every
    request and every byte pass the interceptors; socket_open and on_socket_closed follow the
    real socket (internals 1, 6 and 7)."""
    sim = start_sim("basic").sim
    messages: list[list[str]] = []
    chunks: list[bytes] = []
    closed: list[str] = []
    connected: list[bool] = []

    async def scenario() -> None:
        ib = fence.ReadOnlyIB()
        fence.intercept_sends(ib.client, messages.append, chunks.append)
        fence.read_in_small_chunks(ib)
        fence.on_socket_closed(ib, closed.append)
        ib.connectedEvent += lambda: connected.append(True)
        assert not fence.socket_open(ib)
        await fence.connect_api(ib, "127.0.0.1", sim.port, 31, 5.0)
        assert ib.isConnected() and connected == [True] and ib.wrapper.clientId == 31
        assert fence.socket_open(ib)
        transport = ib.client.conn.transport
        assert getattr(transport, "max_size", None) == fence.READ_CHUNK, RE_READ.format(n=6)
        ib.client.reqPositions()
        ib.disconnect()
        for _ in range(200):
            if closed:
                break
            await asyncio.sleep(0.01)
        assert closed and not fence.socket_open(ib), RE_READ.format(n=6)

    run(scenario())
    # The handshake only (startApi), then our own request: nothing of IB.connectAsync's.
    assert sim.received_ids(31) == [In.START_API, In.REQ_POSITIONS], RE_READ.format(n=1)
    why = RE_READ.format(n=7)
    assert [m[0] for m in messages] == [str(In.START_API), str(In.REQ_POSITIONS)], why
    assert chunks[0].startswith(b"API\0"), why  # the version handshake passes on_bytes too
    assert len(chunks) == 3, why  # handshake, startApi, reqPositions: each framed send seen


# ---------------------------------------------------------------- 2. ReadOnlyIB
def test_read_only_ib_overrides_the_method_ib_connect_calls() -> None:
    why = RE_READ.format(n=2)
    assert shape(fence.ReadOnlyIB.reqAutoOpenOrders) == shape(IB.reqAutoOpenOrders), why
    assert "self.reqAutoOpenOrders(True)" in source(IB.connectAsync), why
    assert "self.client.reqAutoOpenOrders(autoBind)" in source(IB.reqAutoOpenOrders), why


# ---------------------------------------------------------------- 3. IB._onError
def test_on_error_is_ib_insyncs_only_error_listener_and_still_resubscribes(ib: IB) -> None:
    why = RE_READ.format(n=3)
    assert callable(getattr(IB, "_onError", None)), f"IB._onError is gone: {why}"
    assert params(IB._onError) == ["self", "reqId", "errorCode", "errorString", "contract"], why
    assert len(ib.errorEvent) == 1, f"IB() now listens to errorEvent otherwise: {why}"
    # What the drop is for: the unreferenced account-summary task on 1102.
    assert "reqAccountSummaryAsync" in source(IB._onError), why
    fence.drop_account_summary_resubscribe(ib)
    assert len(ib.errorEvent) == 0, why


# ---------------------------------------------------------------- 4. the decoder's handlers
def handler_name(handler: Callable[..., Any]) -> str:
    """`Wrapper.x` for a `Decoder.wrap` closure calling the wrapper's x, `Decoder.x` for the
    Decoder's own method x."""
    code = getattr(handler, "__code__", None)
    cells = getattr(handler, "__closure__", None) or ()
    if code is not None and "methodName" in code.co_freevars:
        return f"Wrapper.{cells[code.co_freevars.index('methodName')].cell_contents}"
    if getattr(handler, "__self__", None).__class__ is Decoder:
        return f"Decoder.{handler.__name__}"
    return repr(handler)


@pytest.mark.parametrize(("msg_id", "expected"), sorted(fence.DECODER_HOOKS.items()))
def test_each_hooked_message_id_still_has_its_handler(ib: IB, msg_id: int, expected: str) -> None:
    why = RE_READ.format(n=4)
    handlers = ib.client.decoder.handlers
    assert isinstance(handlers, dict), why
    assert msg_id in handlers, f"the decoder no longer handles message {msg_id}: {why}"
    found = handler_name(handlers[msg_id])
    assert found in (f"Wrapper.{expected}", f"Decoder.{expected}"), (
        f"message {msg_id} is now handled by {found}, not {expected}: {why}"
    )
    # `Decoder.wrap` skips a wrapper method that is missing, silently: it must exist.
    owner = Wrapper if found.startswith("Wrapper.") else Decoder
    assert callable(getattr(owner, expected, None)), f"{found} is gone: {why}"


def test_a_hook_gets_each_message_whole_and_forwards_to_ib_insync(ib: IB) -> None:
    """Decoder.interpret looks its handler up per message and passes every field, the id
    first; the forward is ib_insync's own handler (here: execDetailsEnd ends the request)."""
    why = RE_READ.format(n=4)
    assert params(Decoder.interpret) == ["self", "fields"], why
    assert "self.handlers[msgId]" in source(Decoder.interpret), why
    seen: list[list[str]] = []
    ended: list[int] = []
    ib.wrapper.execDetailsEnd = ended.append

    def hook(fields: list[str], forward: fence.Forward) -> None:
        seen.append(fields)
        forward(fields)

    fence.hook_decoder(ib, {55: hook})
    ib.client.decoder.interpret(["55", "1", "7"])
    assert seen == [["55", "1", "7"]], why
    assert ended == [7], why
    with pytest.raises(ValueError, match="DECODER_HOOKS"):
        fence.hook_decoder(ib, {1: hook})


# ---------------------------------------------------------------- 5. API versions
def test_client_offers_the_api_versions_our_row_layouts_are_for() -> None:
    offered = (Client.MinClientVersion, Client.MaxClientVersion)
    assert offered == fence.CLIENT_VERSIONS, (
        f"ib_insync now offers API versions {offered[0]}..{offered[1]}: TWS may answer rows in "
        f"another layout than app.broker.convert reads (version {fence.CLIENT_VERSIONS[1]}); "
        + RE_READ.format(n=5)
    )


# ---------------------------------------------------------------- 6. the Connection
def test_the_connection_is_a_protocol_without_its_own_connection_made(ib: IB) -> None:
    why = RE_READ.format(n=6)
    conn = ib.client.conn
    assert isinstance(conn, Connection) and isinstance(conn, asyncio.Protocol), why
    assert Connection.connection_made is asyncio.BaseProtocol.connection_made, (
        f"Connection now defines connection_made, which read_in_small_chunks replaces: {why}"
    )
    assert isinstance(conn.disconnected, Event), why
    assert conn.transport is None, why
    assert "self.disconnected.emit(" in source(Connection.connection_lost), why
    assert "self.transport = None" in source(Connection.connection_lost), why


# ---------------------------------------------------------------- 7. sendMsg
def test_both_send_methods_are_called_through_self() -> None:
    why = RE_READ.format(n=7)
    assert params(Client.sendMsg) == ["self", "msg"], why
    assert params(Connection.sendMsg) == ["self", "msg"], why
    assert "self.sendMsg(" in source(Client.send), why
    client_send = source(Client.sendMsg)
    assert "self.conn.sendMsg(" in client_send, why
    assert "self.sendMsg, None" in client_send, why  # the throttle timer's flush
    assert "self.conn.sendMsg(" in source(Client.connectAsync), why  # the version handshake


# ---------------------------------------------------------------- 8. loggers and texts
def test_the_logger_names_are_ib_insyncs(ib: IB) -> None:
    names = {
        ib._logger.name,
        ib.client._logger.name,
        ib.wrapper._logger.name,
        ib.client.decoder.logger.name,
    }
    assert names == set(fence.IB_LOGGER_NAMES), RE_READ.format(n=8)


def test_refused_and_cancelled_connects_log_the_known_texts(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A refused connect (nobody listening) and a cancelled one (a server that never answers
    the handshake) log the lines app.broker.logs demotes."""
    port = free_port()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the handshake
        writer.close()

    async def scenario() -> None:
        refused = IB()
        with pytest.raises(ConnectionRefusedError):
            await fence.connect_api(refused, "127.0.0.1", port, 32, 2.0)
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        try:
            hanging = IB()
            silent_port = server.sockets[0].getsockname()[1]
            connecting = asyncio.ensure_future(
                fence.connect_api(hanging, "127.0.0.1", silent_port, 33, 5.0)
            )
            await asyncio.sleep(0.2)
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting
        finally:
            server.close()

    # At DEBUG: app.broker.logs' filter (attached once any IbBroker was made in this process)
    # demotes these very lines to DEBUG; the texts are what this test checks.
    with caplog.at_level(logging.DEBUG, logger="ib_insync.client"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "ib_insync.client"]
    for prefix in fence.CONNECT_FAILURE_LOG_PREFIXES:
        assert any(line.startswith(prefix) for line in lines), (
            f"no line starting {prefix!r} (got {lines}): " + RE_READ.format(n=8)
        )


# ---------------------------------------------------------------- 9. cancelled requests
def test_an_answer_to_a_cancelled_request_is_skipped(run: Callable[..., Any], ib: IB) -> None:
    why = RE_READ.format(n=9)
    assert params(Wrapper._endReq) == ["self", "key", "result", "success"], why

    async def scenario() -> None:
        future = ib.wrapper.startReq(77)
        future.cancel()
        ib.wrapper._endReq(77, ["late"])  # must not raise
        failed = ib.wrapper.startReq(78)
        failed.cancel()
        ib.wrapper._endReq(78, RuntimeError("late"), success=False)

    run(scenario())
    assert 77 not in ib.wrapper._futures and 78 not in ib.wrapper._futures, why


# ---------------------------------------------------------------- the fence holds
INTERNAL_ATTRIBUTES = frozenset(
    {
        "conn",
        "decoder",
        "handlers",
        "wrapper",
        "_onError",
        "sendMsg",
        "connection_made",
        "transport",
        "clientId",
        "_logger",
        "_endReq",
        "startReq",
        "MinClientVersion",
        "MaxClientVersion",
    }
)
"""Attribute names of ib_insync's internals the fence uses (none of them app.broker's own)."""


def test_no_other_broker_module_touches_ib_insyncs_internals() -> None:
    """The checks above cover the fence only: the rest of app.broker must stay outside it
    (no ib_insync submodule imports, none of the fence's internal attribute names)."""
    package = Path(fence.__file__).parent
    found: list[str] = []
    for path in sorted(package.glob("*.py")):
        if path.name == "ib_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in INTERNAL_ATTRIBUTES:
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ib_insync."):
                found.append(f"{path.name}:{node.lineno} from {node.module} import …")
    assert not found, (
        "ib_insync internals used outside app.broker.ib_internals (move them behind a named "
        f"function there, listed in its docstring and checked here): {found}"
    )
