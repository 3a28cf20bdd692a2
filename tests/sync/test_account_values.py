"""Issue 19: IB's NetLiq and cash reach the ledger through a real sync — the simulator over
loopback, the real ib_insync client, a real ledger (SQLite file and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from app.db import account_values
from app.domain.account_values import KEPT_TAGS, NET_LIQUIDATION
from app.sim import contracts as c
from tests.sync.test_ledger_truth import sync
from tests.sync.test_trading_day import connected

pytestmark = pytest.mark.timeout(60)

A, B = "DU1111111", "DU2222222"  # the basic scenario's accounts: A in USD, B in EUR


def _stored(stack: Any) -> dict[tuple[str, str, str], Any]:
    return {
        (v.account, v.tag, v.currency): v
        for v in stack.db.run_sync(account_values.latest_account_values)
    }


def test_sync_stores_ib_netliq_and_cash_and_keeps_a_value_ib_left_out(make_stack, run):
    """Every NetLiq and cash value the simulator sent is stored exactly as sent, per account,
    tag and currency (A's totals in USD, B's in EUR; both ledgers per currency and BASE).

    Guards: a value IB leaves out of a later answer read as gone or as zero — it keeps its
    value and its report time (age), while the values IB did send again move on."""
    stack = make_stack("basic")

    def sent() -> dict[tuple[str, str, str], str]:
        return {
            (account, tag, currency): value
            for account in (A, B)
            for tag, value, currency in stack.sim.call(lambda s, a=account: s.account_values(a))
            if tag in KEPT_TAGS
        }

    async def first() -> None:
        await connected(stack)
        await sync(stack)

    run(first())
    before = _stored(stack)
    assert {k: v.value for k, v in before.items()} == sent()
    assert (A, NET_LIQUIDATION, "USD") in before and (B, NET_LIQUIDATION, "EUR") in before
    assert (A, "CashBalance", "EUR") in before  # A holds SAP: its EUR ledger row
    assert (A, "NetLiquidationByCurrency", "BASE") in before

    # TWS stops sending A's NetLiquidation; a trade moves A's cash.
    def drop_net_liquidation(state: Any) -> None:
        answer = state.account_values
        state.account_values = lambda account: [
            row for row in answer(account) if not (account == A and row[0] == NET_LIQUIDATION)
        ]

    stack.sim.call(drop_net_liquidation)
    stack.sim.fill(A, c.AAPL, 5, "190")

    async def again() -> None:
        await sync(stack)

    run(again())
    after = _stored(stack)
    kept = after[(A, NET_LIQUIDATION, "USD")]
    assert kept == before[(A, NET_LIQUIDATION, "USD")]  # same text, same report time
    cash = after[(A, "CashBalance", "USD")]
    assert cash.at > before[(A, "CashBalance", "USD")].at
    assert cash.value == sent()[(A, "CashBalance", "USD")] != before[(A, "CashBalance", "USD")]
