"""The local API over real HTTP: token, methods, triggers (coalescing), documents, binding."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from openapi_spec_validator import validate

from app.api import ApiServer, ApiSettingsError
from app.api.openapi import openapi_document
from app.cli.main import main
from app.db import repository
from app.domain.values import SyncTrigger
from tests.api.conftest import AUTH, TOKEN, until

ENDPOINTS = [
    ("POST", "/api/sync/positions"),
    ("GET", "/api/sync/status"),
    ("GET", "/api/positions"),
    ("GET", "/api/positions?all=true"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/no-such-path"),
]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer {TOKEN.upper()}",
    ],
)
def test_requests_without_the_right_token_are_401(make_api, run, authorization):
    async def scenario():
        api = await make_api()
        headers = {"Authorization": authorization} if authorization is not None else {}
        for method, path in ENDPOINTS:
            status, body, response = await api.request(method, path, headers=headers)
            assert status == 401, (method, path, status, body)
            assert body["status"] == 401 and "bearer token" in body["error"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in json.dumps(body)
        # Nothing was triggered by the refused POST.
        assert api.runtime.db.run_sync(repository.sync_runs) == []

    run(scenario(), timeout=30)


def test_wrong_method_is_405_with_allow_and_unknown_path_404(make_api, run):
    async def scenario():
        api = await make_api()
        cases = [
            ("GET", "/api/sync/positions", "POST"),
            ("PUT", "/api/sync/positions", "POST"),
            ("DELETE", "/api/sync/positions", "POST"),
            ("POST", "/api/sync/status", "GET"),
            ("HEAD", "/api/sync/status", "GET"),
            ("PATCH", "/api/positions", "GET"),
            ("POST", "/api/openapi.json", "GET"),
        ]
        for method, path, allowed in cases:
            status, body, response = await api.request(method, path, headers=AUTH)
            assert status == 405, (method, path)
            assert response.headers["Allow"] == allowed
            if method != "HEAD":
                assert body == {"error": "Method Not Allowed", "status": 405}
        status, body, _ = await api.request("GET", "/api/nothing", headers=AUTH)
        assert status == 404 and body["status"] == 404
        assert api.runtime.db.run_sync(repository.sync_runs) == []

    run(scenario(), timeout=30)


def test_trigger_runs_a_manual_sync_and_answers_its_result(make_api, run):
    async def scenario():
        api = await make_api()
        status, body, response = await api.request("POST", "/api/sync/positions", headers=AUTH)
        assert status == 200 and response.content_type == "application/json"
        assert body["ok"] is True and body["status"] == "ok" and body["trigger"] == "manual"
        assert body["positions_seen"] > 0 and body["opened"] > 0
        assert body["error"] is None and body["summary"].startswith("sync ok (manual)")
        (run_row,) = api.runtime.db.run_sync(repository.sync_runs)
        assert body["run_id"] == run_row.id and run_row.trigger is SyncTrigger.MANUAL

    run(scenario(), timeout=30)


def test_trigger_while_tws_is_gone_answers_the_skipped_run(make_api, run):
    async def scenario():
        api = await make_api()
        await api.runtime.broker.stop()
        status, body, _ = await api.request("POST", "/api/sync/positions", headers=AUTH)
        assert status == 200
        assert body["ok"] is False and body["status"] == "skipped" and body["error"]

    run(scenario(), timeout=30)


def test_triggers_during_a_running_sync_coalesce_into_one_follow_up(make_api, run):
    async def scenario():
        api = await make_api()
        api.sim.set_faults(delays={"executions": 0.5})  # every sync takes at least 0.5 s
        post = lambda: api.request("POST", "/api/sync/positions", headers=AUTH)  # noqa: E731
        first = asyncio.ensure_future(post())
        await until(lambda: api.runtime.service.running)
        second, third = asyncio.ensure_future(post()), asyncio.ensure_future(post())
        answers = [body for _, body, _ in await asyncio.gather(first, second, third)]
        assert all(a["ok"] for a in answers), answers
        # The two triggers that arrived during the first run share ONE follow-up run.
        assert answers[1]["run_id"] == answers[2]["run_id"] != answers[0]["run_id"]
        runs = api.runtime.db.run_sync(repository.sync_runs)
        assert len(runs) == 2
        assert runs[0].started_at >= runs[1].finished_at  # never overlapping

    run(scenario(), timeout=30)


def test_status_document_is_status_json(make_api, run, capsys, tmp_path):
    async def scenario():
        api = await make_api()
        await api.request("POST", "/api/sync/positions", headers=AUTH)
        api.sim.remove_position(*_some_open_key(api))  # a missing-at-broker warning
        status, body, _ = await api.request("POST", "/api/sync/positions", headers=AUTH)
        assert body["missing"] == 1
        status, doc, _ = await api.request("GET", "/api/sync/status", headers=AUTH)
        assert status == 200
        return doc

    doc = run(scenario(), timeout=30)
    assert main(["status", "--json", "--db", str(tmp_path / "ledger.sqlite")]) == 0
    printed = json.loads(capsys.readouterr().out)
    # The age is measured at each call; everything else is the same document.
    assert abs(doc.pop("last_synced_age_seconds") - printed.pop("last_synced_age_seconds")) < 5
    served = [v.pop("age_seconds") for a in doc["account_values"] for v in a["values"]]
    shown = [v.pop("age_seconds") for a in printed["account_values"] for v in a["values"]]
    assert served and all(abs(x - y) < 5 for x, y in zip(served, shown, strict=True))
    assert doc == printed
    assert len(doc["missing_at_broker"]) == 1 and doc["revision"]
    # TSLA's cover (account A) and GOOGL's sale (account B) realized USD only.
    assert list(doc["realized_pnl_by_currency"]) == ["USD"]
    assert doc["realized_pnl_estimated_by_currency"] == {"USD": "0"}
    # IB's rates came through the real adapter into the ledger: A's base is USD, B's EUR, so
    # there is no single base currency to add into, and the document says so.
    assert doc["realized_pnl_base"] is None
    assert doc["realized_pnl_base_unavailable"] == (
        "the accounts have different base currencies (EUR, USD)"
    )


def test_positions_open_or_all_match_positions_json(make_api, run, capsys, tmp_path):
    async def scenario():
        api = await make_api()
        await api.request("POST", "/api/sync/positions", headers=AUTH)
        account, con_id = _some_open_key(api)
        api.sim.set_position(account, _contract(api, account, con_id), Decimal(0))  # closed at IB
        await api.request("POST", "/api/sync/positions", headers=AUTH)
        answers = {}
        for query in ("", "?all=false", "?all=true", "?all=1", "?all=0", "?all=TRUE"):
            status, body, _ = await api.request("GET", "/api/positions" + query, headers=AUTH)
            assert status == 200
            answers[query] = body
        status, body, _ = await api.request("GET", "/api/positions?all=maybe", headers=AUTH)
        assert status == 400 and body["status"] == 400
        return answers, (account, con_id)

    answers, closed = run(scenario(), timeout=30)
    db = str(tmp_path / "ledger.sqlite")
    assert main(["positions", "--json", "--db", db]) == 0
    open_rows = json.loads(capsys.readouterr().out)
    assert main(["positions", "--json", "--all", "--db", db]) == 0
    all_rows = json.loads(capsys.readouterr().out)
    assert answers[""] == answers["?all=false"] == answers["?all=0"] == open_rows
    assert answers["?all=true"] == answers["?all=1"] == answers["?all=TRUE"] == all_rows

    def keys(rows, status):
        return {(r["account"], r["con_id"]) for r in rows if r["status"] == status}

    assert closed in keys(all_rows, "CLOSED") and closed not in keys(open_rows, "OPEN")
    assert keys(open_rows, "CLOSED") == set() and len(all_rows) > len(open_rows)


def test_openapi_is_served_and_valid(make_api, run):
    async def scenario():
        api = await make_api()
        status, body, _ = await api.request("GET", "/api/openapi.json", headers=AUTH)
        return status, body

    status, doc = run(scenario(), timeout=30)
    assert status == 200
    validate(doc)  # raises on an invalid OpenAPI 3.0 document
    assert doc == openapi_document()
    assert set(doc["paths"]) == {
        "/api/sync/positions",
        "/api/sync/status",
        "/api/positions",
        "/api/openapi.json",
    }
    assert doc["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.invalid"])
def test_a_non_loopback_or_unknown_host_is_refused(make_api, run, host):
    async def scenario():
        api = await make_api()
        settings = api.runtime.settings.model_copy(update={"api_host": host})
        server = ApiServer(lambda: api.runtime, settings)
        with pytest.raises(ApiSettingsError) as refused:
            await server.start()
        assert server.addresses == []
        return str(refused.value)

    message = run(scenario(), timeout=30)
    if host == "example.invalid":
        assert "cannot be resolved" in message
    else:
        assert "not a loopback address" in message and "api_allow_remote" in message


def test_a_non_loopback_bind_is_allowed_when_configured(make_api, run):
    async def scenario():
        api = await make_api()
        settings = api.runtime.settings.model_copy(
            update={"api_host": "0.0.0.0", "api_allow_remote": True}
        )
        server = ApiServer(lambda: api.runtime, settings)
        await server.start()
        try:
            assert server.addresses[0][0] == "0.0.0.0"
            api.url = f"http://127.0.0.1:{server.port}"  # reached here over loopback only
            status, _, _ = await api.request("GET", "/api/sync/status", headers=AUTH)
            assert status == 200
        finally:
            await server.stop()

    run(scenario(), timeout=30)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2"])
def test_loopback_hosts_are_accepted(make_api, run, host):
    async def scenario():
        api = await make_api()
        settings = api.runtime.settings.model_copy(update={"api_host": host})
        server = ApiServer(lambda: api.runtime, settings)
        await server.start()
        try:
            assert all(address.startswith(("127.", "::1")) for address, _ in server.addresses)
        finally:
            await server.stop()

    run(scenario(), timeout=30)


@pytest.mark.parametrize(
    "token", ["", "short", "has spaces in it 0123456789", "nön-ascii-0123456789"]
)
def test_a_missing_or_weak_token_is_refused(make_api, run, token):
    async def scenario():
        api = await make_api()
        settings = api.runtime.settings.model_copy(update={"api_token": token})
        with pytest.raises(ApiSettingsError, match="api_token"):
            await ApiServer(lambda: api.runtime, settings).start()

    run(scenario(), timeout=30)


def test_the_port_in_use_is_a_clear_refusal(make_api, run):
    async def scenario():
        api = await make_api()
        settings = api.runtime.settings.model_copy(update={"api_port": api.server.port})
        with pytest.raises(ApiSettingsError, match="cannot listen"):
            await ApiServer(lambda: api.runtime, settings).start()

    run(scenario(), timeout=30)


def _some_open_key(api):
    rows = api.runtime.db.run_sync(repository.positions)
    return sorted(p.key for p in rows)[0]


def _contract(api, account, con_id):
    return api.sim.state.holdings[(account, con_id)].contract
