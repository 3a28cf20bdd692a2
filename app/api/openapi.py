"""The OpenAPI 3.0 description of the local API, served at `GET /api/openapi.json`.

Schemas are strict (`additionalProperties: false`): the API tests validate every answer against
them, so a field added to a document without being described here fails a test.
"""

from __future__ import annotations

import copy
from typing import Any

from app import __version__

DECIMAL = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "An exact decimal as text (no exponent, no trailing zeros).",
}
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


_INT = {"type": "integer"}
_STR = {"type": "string"}
_TRIGGER = {
    "type": "string",
    "enum": ["startup", "periodic", "position_update", "execution", "manual", "reconnect"],
}
_RUN_STATUS = {"type": "string", "enum": ["ok", "failed", "skipped"]}

_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {"error": _STR, "status": _INT}, "Why a request was refused (the HTTP status repeated)."
    ),
    "PnlMismatch": _object(
        {
            "account": _STR,
            "con_id": _INT,
            "symbol": _STR,
            "ours": DECIMAL,
            "broker": DECIMAL,
            "exec_ids": {"type": "array", "items": _STR},
        },
        "Our realized P&L for an event differs from IB's per-fill figure by more than 0.01.",
    ),
    "SyncResult": _object(
        {
            "ok": {"type": "boolean", "description": "A complete snapshot was committed."},
            "status": _RUN_STATUS,
            "trigger": _TRIGGER,
            "run_id": _nullable({**_INT, "description": "The sync_runs row (null: not stored)."}),
            "started_at": TIME,
            "finished_at": TIME,
            "duration_ms": _INT,
            "positions_seen": _INT,
            "opened": _INT,
            "updated": _INT,
            "closed": _INT,
            "missing": {**_INT, "description": "New missing-at-broker warnings in this run."},
            "skipped_rows": {**_INT, "description": "Bad broker rows skipped (logged)."},
            "error": _nullable({**_STR, "description": "Why the run failed or was skipped."}),
            "pnl_mismatches": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/PnlMismatch"},
            },
            "summary": {**_STR, "description": "One line, as `position-sync sync` prints it."},
        },
        "The outcome of one sync run. A run that could not sync (TWS closed, incomplete "
        "snapshot) is still an answer: `ok` is false and `error` says why; nothing changed.",
    ),
    "StalePrices": _object(
        {
            "account": _STR,
            "reason": {**_STR, "description": "Why TWS did not refresh them (e.g. error 2101)."},
            "prices_as_of": _nullable(
                {**TIME, "description": "End of the last sync that refreshed them."}
            ),
            "prices_age_seconds": _nullable({"type": "number"}),
        },
        "An account whose prices are stale: TWS did not serve its market data in the last "
        "committed sync (quantities synced all the same).",
    ),
    "SyncRun": _object(
        {
            "id": _INT,
            "trigger": _TRIGGER,
            "status": _RUN_STATUS,
            "started_at": TIME,
            "finished_at": _nullable(TIME),
            "duration_ms": _nullable(_INT),
            "positions_seen": _INT,
            "opened": _INT,
            "updated": _INT,
            "closed": _INT,
            "missing": _INT,
            "error": _nullable(_STR),
        },
        "A stored sync run.",
    ),
    "SyncStats": _object(
        {
            "runs": _INT,
            "ok": _INT,
            "failed": _INT,
            "skipped": _INT,
            "success_rate": _nullable({"type": "number"}),
            "mean_duration_ms": _nullable({"type": "number"}),
            "max_duration_ms": _nullable(_INT),
        },
        "Over the last 100 runs; success_rate = ok / (ok + failed).",
    ),
    "MissingAtBroker": _object(
        {
            "id": _INT,
            "account": _STR,
            "con_id": _INT,
            "symbol": _STR,
            "local_symbol": _STR,
            "quantity": DECIMAL,
            "missing_since": TIME,
        },
        "An OPEN position the broker stopped reporting without fills explaining it.",
    ),
    "ExchangeRate": _object(
        {
            "account": _STR,
            "currency": _STR,
            "rate": {**DECIMAL, "description": "1 unit of `currency` in the base currency."},
            "at": {**TIME, "description": "When IB reported it (UTC)."},
        },
        "One of IB's `ExchangeRate` account values, as stored.",
    ),
    "AccountValue": _object(
        {
            "tag": {
                **_STR,
                "description": "IB's key: NetLiquidation or TotalCashValue (the account's totals, "
                "in its base currency), NetLiquidationByCurrency or CashBalance (its ledger per "
                "currency, and as BASE).",
            },
            "currency": {**_STR, "description": "A currency code, or BASE."},
            "value": {**_STR, "description": "The value exactly as IB sent it (text)."},
            "reported_at": {**TIME, "description": "When IB reported it (UTC)."},
            "age_seconds": {"type": "number"},
        },
        "One of IB's account values as last reported; a value IB stopped sending keeps its "
        "last report and age.",
    ),
    "AccountValues": _object(
        {
            "account": _STR,
            "base_currency": _nullable(_STR),
            "values": {"type": "array", "items": {"$ref": "#/components/schemas/AccountValue"}},
        },
        "One account's stored NetLiq and cash values (never summed across currencies).",
    ),
    "BaseCurrencyTotal": _object(
        {
            "currency": {**_STR, "description": "The accounts' base currency."},
            "total": DECIMAL,
            "estimated": DECIMAL,
            "unknown": _INT,
            "rates_at": _nullable({**TIME, "description": "The oldest rate's time."}),
            "rates": {"type": "array", "items": {"$ref": "#/components/schemas/ExchangeRate"}},
        },
        "Every currency's realized P&L converted with IB's own `ExchangeRate` values (the ones "
        "listed); present only when every currency has a rate into one base currency.",
    ),
    "Status": _object(
        {
            "database": _STR,
            "revision": _nullable(_STR),
            "accounts": {"type": "array", "items": _STR},
            "open_positions": _INT,
            "closed_positions": _INT,
            "cost_basis": {
                "type": "string",
                "enum": ["average", "fifo"],
                "description": "Which realized figure the totals hold: average cost as TWS shows "
                "it, or FIFO lots as IB's tax reporting (setting `cost_basis`).",
            },
            "realized_pnl_by_currency": {
                "type": "object",
                "additionalProperties": DECIMAL,
                "description": "Realized P&L per currency (exact plus estimated) in the figure "
                '`cost_basis` names, e.g. `{"USD": "399", "EUR": "100"}`; amounts of different '
                "currencies are never added.",
            },
            "realized_pnl_estimated_by_currency": {
                "type": "object",
                "additionalProperties": DECIMAL,
                "description": "The part of each currency's realized P&L that rests on estimates "
                "(market or last-known prices, a commission not reported yet).",
            },
            "realized_pnl_unknown_by_currency": {
                "type": "object",
                "additionalProperties": _INT,
                "description": "Per currency, how many amounts could not be priced at all (in "
                "no figure): lifecycles at average cost; under FIFO, events without a FIFO figure "
                "(also those folded before FIFO was derived).",
            },
            "realized_pnl_base": _nullable({"$ref": "#/components/schemas/BaseCurrencyTotal"}),
            "realized_pnl_base_unavailable": _nullable(
                {
                    **_STR,
                    "description": "Why there is no base-currency figure (null when there is one "
                    "or nothing was realized).",
                }
            ),
            "last_synced_at": _nullable(TIME),
            "last_synced_age_seconds": _nullable({"type": "number"}),
            "last_run": _nullable({"$ref": "#/components/schemas/SyncRun"}),
            "stats": {"$ref": "#/components/schemas/SyncStats"},
            "missing_at_broker": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/MissingAtBroker"},
            },
            "stale_prices": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/StalePrices"},
                "description": "Accounts whose market data the last committed sync could not "
                "refresh (their last prices stand); empty when all were refreshed.",
            },
            "fills_unavailable": _nullable(
                {
                    **_STR,
                    "description": "Why the last committed sync had no executions answer (its "
                    "changes are estimates until the fills arrive); null when it had one.",
                }
            ),
            "account_values": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/AccountValues"},
                "description": "IB's NetLiq and cash account values per account, as stored by the "
                "last OK syncs (offline too), each with its age.",
            },
        },
        "Exactly the document `position-sync status --json` prints (see the README).",
    ),
    "Position": _object(
        {
            "id": _INT,
            "account": _STR,
            "con_id": _INT,
            "symbol": _STR,
            "sec_type": _STR,
            "currency": _STR,
            "exchange": _STR,
            "local_symbol": _STR,
            "multiplier": DECIMAL,
            "expiry": _nullable(_STR),
            "strike": _nullable(DECIMAL),
            "right": _nullable(_STR),
            "quantity": DECIMAL,
            "average_price": DECIMAL,
            "average_cost": _nullable(DECIMAL),
            "current_price": _nullable(DECIMAL),
            "market_value": _nullable(DECIMAL),
            "unrealized_pnl": _nullable(DECIMAL),
            "unrealized_pnl_pct": _nullable(DECIMAL),
            "realized_pnl": {
                **DECIMAL,
                "description": "The lifecycle's realized P&L at average cost (as TWS shows it), "
                "whatever the setting `cost_basis`: the per-event FIFO figures are in "
                "`position-sync export --events` (realized_pnl_fifo).",
            },
            "realized_pnl_estimated": {
                **DECIMAL,
                "description": "The part of realized_pnl that rests on estimates.",
            },
            "pnl_basis": _nullable(
                {
                    "type": "string",
                    "enum": ["exact", "estimated", "unknown"],
                    "description": "The least trustworthy basis of the realizing events "
                    "(null: nothing realized).",
                }
            ),
            "status": {"type": "string", "enum": ["OPEN", "CLOSED"]},
            "opened_at": TIME,
            "closed_at": _nullable(TIME),
            "close_reason": _nullable(
                {"type": "string", "enum": ["broker", "flip", "manual", "missing", "expired"]}
            ),
            "last_synced_at": _nullable(TIME),
            "missing_since": _nullable(TIME),
            "entry_trade_id": _nullable(_STR),
            "exit_trade_id": _nullable(_STR),
        },
        "One cached position lifecycle, as `position-sync positions --json` lists it.",
    ),
}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_UNAUTHORIZED = _json("Error", "No or a wrong bearer token.")


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Position Sync local API",
        "version": __version__,
        "description": "Trigger a sync of the Interactive Brokers position ledger and read "
        "it. Every request needs `Authorization: Bearer <api_token>`.",
    },
    "security": [{"bearerAuth": []}],
    "paths": {
        "/api/sync/positions": {
            "post": {
                "operationId": "syncPositions",
                "summary": "Sync now (a manual trigger) and answer with the run's result",
                "description": "Joins the run in flight, if any, as its one coalesced "
                "follow-up run (single flight): concurrent triggers share one result. No "
                "request body.",
                "responses": {
                    "200": _json("SyncResult", "The run's result (also when it failed)."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/sync/status": {
            "get": {
                "operationId": "syncStatus",
                "summary": "Last sync, counts, stats and warnings (`status --json`)",
                "responses": {
                    "200": _json("Status", "The status document."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/positions": {
            "get": {
                "operationId": "positions",
                "summary": "Cached positions: open ones, or every lifecycle with all=true",
                "parameters": [
                    {
                        "name": "all",
                        "in": "query",
                        "required": False,
                        "description": "Include closed lifecycles (true/false, 1/0).",
                        "schema": {"type": "boolean", "default": False},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Positions, ordered as `positions --json` lists them.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Position"},
                                }
                            }
                        },
                    },
                    "400": _json("Error", "`all` is not a boolean."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": _UNAUTHORIZED,
                },
            }
        },
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "The `api_token` setting.",
            }
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 description (a fresh copy: callers may modify it)."""
    return copy.deepcopy(_DOCUMENT)
