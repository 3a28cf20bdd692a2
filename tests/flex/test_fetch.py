"""`flex fetch` against a local fake Flex Web Service on a real socket (tests.flex.fake_service):
the two-step request, "generation in progress" retried with backoff, IB's error codes as clear
messages, network failures as exit 3 with nothing changed, and the token never shown or logged."""

from __future__ import annotations

import logging
import socket

import pytest

from app.cli.main import main
from app.flex import service
from app.flex.service import FlexRequest, FlexServiceError, fetch_statement
from tests.domain.ledger_fixture import AAPL, fill
from tests.flex.builder import StatementXml, document
from tests.flex.fake_service import QUERY, TOKEN, FakeFlexService
from tests.flex.test_import import ledger_dump

BUY = fill(AAPL, "BOT", "100", "149.5", commission="1", minutes=-60, exec_id="0003.a.01.01")
STATEMENT = document(StatementXml("DU111").trade(BUY)).encode()


@pytest.fixture
def flex():
    fake = FakeFlexService(statement=STATEMENT).start()
    yield fake
    fake.stop()


@pytest.fixture
def configured(flex, monkeypatch):
    monkeypatch.setenv("POSITION_SYNC_FLEX_URL", flex.url)
    monkeypatch.setenv("POSITION_SYNC_FLEX_TOKEN", TOKEN)
    monkeypatch.setenv("POSITION_SYNC_FLEX_QUERY_ID", QUERY)
    monkeypatch.setattr(service, "BACKOFF_START", 0.01)  # the same doubling, in hundredths
    return flex


def fetch(url: str, capsys, caplog) -> tuple[int, str]:
    caplog.set_level(logging.DEBUG)
    code = main(["flex", "fetch", "--db", url])
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    assert TOKEN not in text  # the secret is never printed or logged
    return code, text


def test_in_progress_is_retried_then_the_statement_is_imported(
    configured, tmp_path, capsys, caplog
):
    configured.pending = 2
    url = str(tmp_path / "ledger.sqlite")
    code, text = fetch(url, capsys, caplog)
    assert code == 0, text
    assert "Statement generation in progress" in text and "1 new" in text
    actions = [path.rsplit("/", 1)[-1] for path, _, _ in configured.requests]
    assert actions == ["SendRequest", "GetStatement", "GetStatement", "GetStatement"]
    assert all(q["v"] == "3" for _, q, _ in configured.requests)
    assert all(agent.startswith("position-sync/") for _, _, agent in configured.requests)
    _, _, fills = ledger_dump(url)
    assert [f.exec_id for f in fills] == [BUY.exec_id]


def test_backoff_doubles_and_is_bounded(flex):
    """Guards a poll loop that hammered IB (1018: one request a second per token) or never
    gave up."""
    flex.pending = 10**6
    waits: list[float] = []
    request = FlexRequest(flex.url, TOKEN, QUERY)
    with pytest.raises(FlexServiceError) as caught:
        fetch_statement(request, sleep=waits.append, max_wait=100)
    assert waits == [1, 2, 4, 8, 16, 30, 30]  # capped at 30 s, 91 s in all
    assert caught.value.unreachable and "still not ready after 91 s" in str(caught.value)


def test_too_many_requests_is_retried(flex):
    flex.busy = 2
    waits: list[float] = []
    data = fetch_statement(FlexRequest(flex.url, TOKEN, QUERY), sleep=waits.append)
    assert data == STATEMENT and waits == [1, 2]


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (1012, "Token has expired.", "the Flex token has expired"),
        (1013, "IP restriction.", "refused this machine's IP address"),
        (1011, "Service account is inactive.", "Flex Web Service is inactive"),
    ],
)
def test_ib_error_codes_become_clear_messages(
    configured, tmp_path, capsys, caplog, code, message, expected
):
    configured.send_error = (code, message)
    url = str(tmp_path / "ledger.sqlite")
    status, text = fetch(url, capsys, caplog)
    assert status == 2
    assert expected in text and f"IB error {code}: {message}" in text


def test_a_wrong_token_or_query_is_named(configured, monkeypatch, tmp_path, capsys, caplog):
    url = str(tmp_path / "ledger.sqlite")
    monkeypatch.setenv("POSITION_SYNC_FLEX_QUERY_ID", "1")
    status, text = fetch(url, capsys, caplog)
    assert status == 2 and "check flex_query_id" in text
    monkeypatch.setenv("POSITION_SYNC_FLEX_TOKEN", "not-the-token")
    status, text = fetch(url, capsys, caplog)
    assert status == 2 and "check flex_token" in text and "not-the-token" not in text
    monkeypatch.setenv("POSITION_SYNC_FLEX_TOKEN", "")
    status, text = fetch(url, capsys, caplog)
    assert status == 2 and "flex_token is not set" in text


def test_an_answer_echoing_the_token_is_redacted(configured, tmp_path, capsys, caplog):
    configured.send_error = (1020, f"Invalid request t={TOKEN}")
    status, text = fetch(str(tmp_path / "ledger.sqlite"), capsys, caplog)
    assert status == 2 and "t=***" in text


def test_an_unreachable_service_is_exit_3_and_changes_nothing(
    configured, monkeypatch, tmp_path, capsys, caplog
):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("POSITION_SYNC_FLEX_URL", f"http://127.0.0.1:{port}/FlexWebService")
    url = str(tmp_path / "ledger.sqlite")
    status, text = fetch(url, capsys, caplog)
    assert status == 3 and "cannot reach the Flex Web Service at http://127.0.0.1" in text


def test_a_statement_that_never_comes_is_exit_3(configured, monkeypatch, tmp_path, capsys, caplog):
    configured.pending = 10**6
    monkeypatch.setattr(service, "MAX_WAIT", 0.05)
    status, text = fetch(str(tmp_path / "ledger.sqlite"), capsys, caplog)
    assert status == 3 and "still not ready" in text


def test_a_redirect_to_another_server_is_refused(flex):
    """Guards the token (it rides in the query string) against a redirect to another host."""
    host, port = flex.server.server_address[:2]
    flex.redirect = f"http://localhost:{port}/elsewhere"
    with pytest.raises(FlexServiceError) as caught:
        fetch_statement(FlexRequest(flex.url, TOKEN, QUERY), sleep=lambda _: None)
    assert "redirected to another server (http://localhost:" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert len(flex.requests) == 1  # the redirect was not followed
    flex.redirect = ""
    flex.redirect, flex.requests[:] = f"http://{host}:{port}/moved", []
    data = fetch_statement(FlexRequest(flex.url, TOKEN, QUERY), sleep=lambda _: None)
    assert data == STATEMENT  # the same host: followed
    assert [p for p, _, _ in flex.requests][:2] == [
        "/AccountManagement/FlexWebService/SendRequest",
        "/moved/SendRequest",
    ]
