"""Fuzzing the local API: schemathesis against its own OpenAPI description, and raw bytes.

The service runs for real (a Runtime on the simulator, the API on its loop) in a thread of its
own, because schemathesis's client is blocking. Bounded: a fixed number of examples per run,
derandomized (the same examples every run), each request with a timeout.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.api import ApiServer
from app.api.openapi import openapi_document
from app.runtime import Runtime
from app.settings import Settings
from app.sim.runner import SimulatorThread
from tests.api.conftest import AUTH, settings_for

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


class ServedThread:
    """A started Runtime with the API, on a loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self.runtime: Runtime | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="api-under-fuzz", daemon=True)

    def start(self) -> ServedThread:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the API did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the API thread did not stop"

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # ib_insync reads the policy's loop (STYLE.md traps)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runtime = self.runtime = Runtime.open(self.settings)
        server = ApiServer(lambda: runtime, self.settings)
        try:
            await runtime.service.start()
            await server.start()
            self.url = server.urls[0]
            self._ready.set()
            await self._stop.wait()
        finally:
            await server.stop()
            await runtime.service.stop()
            runtime.close()


@pytest.fixture
def served(tmp_path: Path, start_sim: Callable[..., SimulatorThread]) -> Iterator[ServedThread]:
    sim = start_sim("basic")
    thread = ServedThread(settings_for(tmp_path / "ledger.sqlite", sim.port)).start()
    yield thread
    thread.stop()


def _calls(served: ServedThread, headers: dict[str, str], checks: list[Any]) -> Callable[..., Any]:
    session = requests.Session()
    sent: list[int] = []

    def call(case: Any) -> None:
        response = case.call_and_validate(
            base_url=served.url, session=session, headers=headers, checks=checks, timeout=15
        )
        sent.append(response.status_code)

    call.sent = sent  # type: ignore[attr-defined]
    return call


def test_schemathesis_positive_cases_conform_and_never_5xx(served):
    """Every operation, with data its schema allows: no 5xx, and every answer is described."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    call = _calls(
        served,
        AUTH,
        [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    given(case=schema.as_strategy(GenerationMode.POSITIVE))(FUZZ(call))()
    _report("positive", call.sent)
    assert len(call.sent) >= 20 and all(code < 500 for code in call.sent)
    assert {200, 400} >= set(call.sent) >= {200}


def test_schemathesis_negative_cases_are_refused_without_5xx(served):
    """Data the schema forbids (a non-boolean `all`, stray parameters): 4xx or ignored, no 5xx."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    call = _calls(served, AUTH, [not_a_server_error])
    operation = schema["/api/positions"]["GET"]
    given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))(FUZZ(call))()
    _report("negative", call.sent)
    assert len(call.sent) >= 20 and all(code < 500 for code in call.sent)
    assert 400 in call.sent


def test_schemathesis_without_the_token_is_always_401(served):
    """Every generated request without the token is refused before anything else happens."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    call = _calls(served, {}, [not_a_server_error])
    given(case=schema.as_strategy(GenerationMode.POSITIVE))(FUZZ(call))()
    _report("no token", call.sent)
    assert len(call.sent) >= 20 and set(call.sent) == {401}
    assert served.runtime is not None


_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE"])
_PATHS = st.sampled_from(
    ["/api/sync/positions", "/api/sync/status", "/api/positions", "/api/openapi.json", "/"]
)
_JUNK = st.binary(max_size=300)
_HEADER_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(
    str.strip
)


def _report(name: str, statuses: list[int]) -> None:
    """A line for `pytest -s`: how many requests, by status."""
    counts = {code: statuses.count(code) for code in sorted(set(statuses))}
    print(f"fuzz {name}: {len(statuses)} requests, by status {counts}")


def _exchange(url: str, raw: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        chunks = []
        try:
            connection.sendall(raw)
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # refused mid-send (an oversized request): what was answered still counts
    return b"".join(chunks)


def test_raw_requests_never_5xx(served):
    """Malformed and oversized requests over a raw socket: a 4xx (or a closed connection), never a
    5xx or a hang; and the API still answers afterwards."""
    statuses: list[int] = []

    @FUZZ
    @given(
        method=_METHODS,
        path=_PATHS,
        query=st.text(max_size=40),
        token=st.sampled_from([AUTH["Authorization"], "", "Bearer x"]),
        header=_HEADER_VALUE,
        junk=_JUNK,
        shape=st.sampled_from(
            ["plain", "body", "junk-line", "huge-header", "huge-body", "bad-length"]
        ),
    )
    def exchange(method, path, query, token, header, junk, shape):
        target = path + ("?" + requests.utils.quote(query, safe="=&") if query else "")
        head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if token:
            head.append(f"Authorization: {token}")
        head.append(f"X-Fuzz: {header}")
        body = b""
        if shape == "body":
            body = junk
            head.append(f"Content-Length: {len(body)}")
        elif shape == "junk-line":
            head.append(junk.decode("latin-1").replace("\r", "").replace("\n", ""))
        elif shape == "huge-header":
            head.append("X-Big: " + "a" * 20_000)
        elif shape == "huge-body":
            body = b"x" * 100_000
            head.append(f"Content-Length: {len(body)}")
        elif shape == "bad-length":
            head.append("Content-Length: -5")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        answer = _exchange(served.url, raw)
        if not answer:
            return  # the server may close a connection it cannot parse
        status_line = answer.split(b"\r\n", 1)[0]
        # aiohttp answers what it cannot parse as HTTP/1.0.
        assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), status_line
        status = int(status_line.split()[1])
        statuses.append(status)
        assert status < 500, (raw[:200], answer[:300])

    exchange()
    _report("raw", statuses)
    assert len(statuses) >= EXAMPLES // 2
    response = requests.get(served.url + "/api/sync/status", headers=AUTH, timeout=10)
    assert response.status_code == 200
