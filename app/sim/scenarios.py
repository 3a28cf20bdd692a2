"""Named, selectable broker set-ups: the demo, scale runs and fault cases.

A scenario builds a fresh SimState (and Faults) each time, and may bring a driver coroutine
that keeps the broker moving while the server runs (the demo's ticks and fills).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from app.sim import contracts as c
from app.sim.demo import DemoTiming, build_demo, run_demo
from app.sim.faults import Faults
from app.sim.model import Contract
from app.sim.state import SimState

if TYPE_CHECKING:
    from app.sim.server import GatewaySimulator

D = Decimal
Driver = Callable[["GatewaySimulator"], Coroutine[Any, Any, None]]

BASIC_ACCOUNTS = ("DU1111111", "DU2222222")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named broker set-up."""

    name: str
    description: str
    build: Callable[[], SimState]
    faults: Callable[[], Faults] = field(default=Faults)
    driver: Driver | None = None


def build_basic() -> SimState:
    """Two accounts; stock, fractional, short, future, option, EUR and GBP; three fills today."""
    state = SimState()
    a, b = BASIC_ACCOUNTS
    state.add_account(a, "USD", {"USD": D("250000"), "EUR": D("5000")})
    state.add_account(b, "EUR", {"EUR": D("80000")})
    state.set_position(a, c.AAPL, D(80), D("150.25"), D("190.5"))
    state.set_position(a, c.MSFT, D("0.3"), D("310.1"), D("415.2"))
    state.set_position(a, c.TSLA, D(-60), D("250.0"), D("240.0"))
    state.set_position(a, c.ES, D(2), D("250012.5"), D("5050.25"))
    state.set_position(a, c.AAPL_C200, D(5), D("350.65"), D("4.1"))
    state.set_position(a, c.SAP, D(20), D("180.0"), D("190.0"))
    state.set_position(b, c.VOD, D(1000), D("0.75"), D("0.72"))
    state.set_position(b, c.AAPL, D(10), D("170.0"))
    state.set_position(b, c.GOOGL, D("10"), D("140.0"), D("165.3"))
    state.fill(a, c.AAPL, D(20), D("188.0"))  # an add
    state.fill(a, c.TSLA, D(10), D("241.0"))  # a partial cover: realized P&L
    state.fill(b, c.GOOGL, D("-2.5"), D("166.0"))  # a fractional partial close
    return state


def build_single() -> SimState:
    """One account (ib_insync then subscribes to account updates by itself)."""
    state = SimState()
    state.add_account("DU5550001", "USD")
    state.set_position("DU5550001", c.AAPL, D(100), D("150.25"), D("190.5"))
    state.set_position("DU5550001", c.MSFT, D("0.3"), D("310.1"), D("415.2"))
    state.set_position("DU5550001", c.ES, D(-1), D("250012.5"), D("5050.25"))
    state.fill("DU5550001", c.AAPL, D(-40), D("191.0"))
    return state


def build_empty() -> SimState:
    state = SimState()
    state.add_account("DU0000001", "USD")
    return state


def build_bad_rows() -> SimState:
    """Basic, plus NaN / infinite / unset prices, an empty quantity, an unknown account's row."""
    state = build_basic()
    a, _ = BASIC_ACCOUNTS
    state.set_position(a, c.NVDA, D(15), D("120.0"), D("NaN"))
    state.set_position(a, c.AMZN, D(3), D("180.0"), D("Infinity"))
    state.set_position(a, c.SPY, D(4), D("500.0"))
    state.prices[c.SPY.con_id] = None  # unset
    state.set_position(a, c.BRK_B, D(7), D("400.0"), D("410.0")).empty_quantity = True
    state.set_position("DU9999999", c.MES, D(1), D("25000"), D("5000"))  # not a managed account
    return state


CENTS_ACCOUNT = "DU1600003"


def build_cents_future() -> SimState:
    """Issue 16 item 3: a cents-quoted future (ZC, priceMagnifier 100) beside a dollar one.

    ZC 2 @ 450.25 ¢ (avgCost 22,512.50 $ per contract = 450.25 × 5,000 ÷ 100), marked 452 ¢;
    ES 1 for contrast. reqContractDetails answers each with its priceMagnifier.
    """
    state = SimState()
    state.add_account(CENTS_ACCOUNT, "USD", {"USD": D(500_000)})
    state.set_position(CENTS_ACCOUNT, c.ZC, D(2), D("22512.5"), D("452"))
    state.set_position(CENTS_ACCOUNT, c.ES, D(1), D("250012.5"), D("5050.25"))
    return state


NO_DATA_ACCOUNT = "DU1600006"


def build_no_market_data() -> SimState:
    """Issue 16 item 6: portfolio rows without market data: price 0, price -1, and one priced.

    TWS still lists every position in the account download without a market data subscription
    (or on a weekend, or with delayed data off); the row's marketPrice is then 0 or -1 — -1 is
    IB's "no bid/ask" (ib_insync issue #124) — and TWS derives marketValue and unrealizedPNL
    from it (so an unrealized loss of the whole cost), as the simulator's valuation does.
    """
    state = SimState()
    state.add_account(NO_DATA_ACCOUNT, "USD", {"USD": D(100_000)})
    state.set_position(NO_DATA_ACCOUNT, c.AAPL, D(100), D("150.25"), D(0))
    state.set_position(NO_DATA_ACCOUNT, c.MSFT, D(10), D("310.1"), D(-1))
    state.set_position(NO_DATA_ACCOUNT, c.ES, D(1), D("250012.5"), D(-1))
    state.set_position(NO_DATA_ACCOUNT, c.NVDA, D(15), D("120.0"), D("125.5"))
    return state


CONVERSION_ACCOUNT = "DU1600005"
REVERSE_SPLIT = Fraction(1, 3)
"""New units per old one: AMTD's "SPLIT 1 FOR 3" (ib-edavki issues/106)."""
CONVERSION_DELAY = 30.0
"""Seconds after the gateway starts before the scenario's conversion happens."""


def build_conversion() -> SimState:
    """Issue 16 item 5: 1,000 AMTD on the old conId @ 2.00, and AAPL beside it.

    The driver (`_conversion_driver`) then does what IB did to AMTD in November 2023: a
    1-for-3 reverse split under a *new* conId — the old conId stops being reported, the new one
    holds 333 @ 6.00 (avgCost × 3) and the third share left over is paid in cash at the market
    (ibkb.interactivebrokers.com/article/2121: fractions from mandatory actions are liquidated
    for cash). IB's statement books it as two CorporateAction rows of type RS, one per conId
    (github.com/ib-edavki/ib-edavki/issues/106; "after every split they change conid as well as
    isin": ib-edavki pull/75). What TWS's API sends for the old conId at that moment (nothing,
    or a zero row) is not documented; the simulator sends nothing.
    """
    state = SimState()
    state.add_account(CONVERSION_ACCOUNT, "USD", {"USD": D(50_000)})
    state.set_position(CONVERSION_ACCOUNT, c.AMTD_OLD, D(1000), D("2.00"), D("2.10"))
    state.set_position(CONVERSION_ACCOUNT, c.AAPL, D(10), D("150.25"), D("190.5"))
    return state


def convert_amtd(sim: GatewaySimulator) -> None:
    """The scenario's conversion, now (tests call it instead of waiting for the driver)."""
    sim.convert(CONVERSION_ACCOUNT, c.AMTD_OLD.con_id, c.AMTD, REVERSE_SPLIT)


async def _conversion_driver(sim: GatewaySimulator) -> None:
    await asyncio.sleep(CONVERSION_DELAY)
    convert_amtd(sim)  # on the simulator's own loop: runs inline


_SCALE_KINDS = ("STK", "STK", "STK", "STK", "STK", "STK", "FRAC", "SHORT", "FUT", "OPT")
_CURRENCIES = ("USD", "USD", "USD", "USD", "EUR", "GBP")


def build_scale(count: int, accounts: int | None = None) -> SimState:
    """`count` positions spread over accounts (50 for 20,000), fully deterministic and fast."""
    n_accounts = accounts or min(50, max(1, count // 400))
    state = SimState()
    codes = [f"DU{9_000_000 + i:07d}" for i in range(n_accounts)]
    for code in codes:
        state.add_account(code, "USD")
    seed = 12345
    for i in range(count):
        # A small LCG: deterministic across Python versions and much faster than random.Random.
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        kind = _SCALE_KINDS[seed % len(_SCALE_KINDS)]
        con_id = 10_000_000 + i
        price = D(10 + seed % 990) + D(seed % 100) / 100
        currency = _CURRENCIES[(seed >> 8) % len(_CURRENCIES)]
        symbol = f"S{i:05d}"
        quantity = D(1 + (seed >> 4) % 500)
        multiplier: Decimal | None = None
        sec_type, expiry, strike, right, exchange = "STK", "", D(0), "", "SMART"
        if kind == "FRAC":
            quantity = D((seed >> 4) % 100_000 + 1) / 10_000
        elif kind == "SHORT":
            quantity = -quantity
        elif kind == "FUT":
            sec_type, expiry, multiplier, exchange, currency = "FUT", "20271217", D(50), "", "USD"
            quantity = D(1 + seed % 20)
        elif kind == "OPT":
            sec_type, expiry, multiplier, currency = "OPT", "20271217", D(100), "USD"
            strike, right, price = D(50 + seed % 300), "CP"[seed & 1], D(seed % 2000) / 100 + 1
            quantity = D(1 + seed % 30) * (-1 if seed & 2 else 1)
        contract = Contract(
            con_id,
            symbol,
            sec_type,
            currency,
            exchange,
            "NASDAQ",
            symbol,
            symbol,
            expiry,
            strike,
            right,
            multiplier,
        )
        avg_cost = price * D("0.97") * contract.factor
        state.set_position(codes[i % n_accounts], contract, quantity, avg_cost, price)
    return state


def _with_faults(**kwargs: Any) -> Callable[[], Faults]:
    def make() -> Faults:
        return Faults(**kwargs)

    return make


def _demo_driver(sim: GatewaySimulator) -> Coroutine[Any, Any, None]:
    return run_demo(sim, DemoTiming())


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "demo",
            "lively: 3 accounts, 14 positions, ticks every second, a fill every ~20 s, "
            "one position vanishes without fills after ~45 s",
            build_demo,
            driver=_demo_driver,
        ),
        Scenario("basic", "2 accounts, 9 positions, 3 fills today; static", build_basic),
        Scenario("single", "1 account, 3 positions, 1 fill; static", build_single),
        Scenario("empty", "1 account, no positions", build_empty),
        Scenario(
            "bad-rows",
            "basic + NaN/inf/unset prices, empty quantity, unknown account",
            build_bad_rows,
        ),
        Scenario(
            "no-position-end",
            "basic, but positionEnd never comes",
            build_basic,
            _with_faults(withhold_end={"positions"}),
        ),
        Scenario(
            "no-exec-end",
            "basic, but execDetailsEnd never comes",
            build_basic,
            _with_faults(withhold_end={"executions"}),
        ),
        Scenario(
            "tws-10.30-executions",
            "basic; reqExecutions answered with nothing (no rows, no end), live executions "
            "still pushed (Faults.silent_executions: ib_async issue 54)",
            build_basic,
            _with_faults(silent_executions=True),
        ),
        Scenario(
            "drop-mid-positions",
            "basic; the first positions snapshot drops after row 3",
            build_basic,
            _with_faults(drop_after_position_rows=3),
        ),
        Scenario(
            "slow",
            "basic; positions, account data and executions answer after 1.5 s",
            build_basic,
            _with_faults(
                delays={
                    "positions": 1.5,
                    "account_updates": 1.5,
                    "account_updates_multi": 1.5,
                    "executions": 1.5,
                }
            ),
        ),
        Scenario(
            "cents-future",
            "1 account: ZC corn quoted in cents (priceMagnifier 100) and ES; static",
            build_cents_future,
        ),
        Scenario(
            "no-market-data",
            "1 account: portfolio rows priced 0 and -1 (no market data), one priced; static",
            build_no_market_data,
        ),
        Scenario(
            "no-contract-details",
            "cents-future, but contract details never end (their unit stays unknown)",
            build_cents_future,
            _with_faults(withhold_end={"contract_details"}),
        ),
        Scenario(
            "account-updates-held",
            "basic; another API client holds account updates for DU1111111, so TWS refuses "
            "DU2222222's with 2101 (Faults.account_updates_holder)",
            build_basic,
            _with_faults(exclusive_account_updates=True, account_updates_holder=BASIC_ACCOUNTS[0]),
        ),
        Scenario(
            "positions-refused",
            "basic; reqPositions refused as for a large advisor / on-demand IBroker login "
            "(Faults.refuse_positions): positions only through reqPositionsMulti",
            build_basic,
            _with_faults(refuse_positions=True),
        ),
        Scenario(
            "new-conid-reverse-split",
            "1 account: AMTD 1,000 @ 2.00 on its old conId; after 30 s IB's 1-for-3 reverse "
            "split moves it to a new conId (333 @ 6.00, the fraction paid in cash); no fills",
            build_conversion,
            driver=_conversion_driver,
        ),
        Scenario(
            "advisor-60",
            "60 accounts, 600 positions: more than 50, so reqPositions is refused",
            lambda: build_scale(600, accounts=60),
        ),
        Scenario("scale-1000", "1,000 positions over 2 accounts", lambda: build_scale(1000)),
        Scenario("scale-20000", "20,000 positions over 50 accounts", lambda: build_scale(20_000)),
    )
}
_SCALE = re.compile(r"scale-(\d+)")


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """A scenario by name; any `scale-N` works, not only the listed ones."""
    if name in SCENARIOS:
        return SCENARIOS[name]
    match = _SCALE.fullmatch(name)
    if match:
        count = int(match.group(1))
        return Scenario(name, f"{count:,} positions", lambda: build_scale(count))
    raise KeyError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)} or scale-N")
