"""The `demo` scenario: a lively broker for `--demo` and for people trying the app.

Prices random-walk every tick; every `fill_every` ticks one position trades, cycling through an
add, a partial close and a flip; once, after `vanish_after` ticks, a position disappears
without any fill so the app's "missing at broker" warning shows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from app.sim import contracts as c
from app.sim.state import SimState

if TYPE_CHECKING:
    from app.sim.server import GatewaySimulator

logger = logging.getLogger(__name__)

D = Decimal
DEMO_ACCOUNTS = ("DU1234567", "DU7654321", "U9876543")
# (account index, contract) that trade in turn, and the one that vanishes.
_TRADERS = ((0, c.AAPL), (0, c.ES), (1, c.MSFT), (0, c.AAPL_C200), (2, c.TSLA), (1, c.SAP))
_VANISHING = (1, c.GOOGL)


@dataclass(frozen=True, slots=True)
class DemoTiming:
    """Seconds per tick, and how many ticks between fills and before the position vanishes."""

    tick: float = 1.0
    fill_every: int = 20
    vanish_after: int = 45
    seed: int = 7


def build_demo() -> SimState:
    """Three accounts and 14 positions: stock, fractional, short, ES future, options, FX."""
    state = SimState()
    a, b, u = DEMO_ACCOUNTS
    state.add_account(a, "USD", {"USD": D("184250.00")})
    state.add_account(b, "USD", {"USD": D("52000.00"), "EUR": D("12000.00")})
    state.add_account(u, "EUR", {"EUR": D("98000.00"), "GBP": D("2000.00")})
    state.set_position(a, c.AAPL, D(100), D("150.2550"), D("190.50"))
    state.set_position(a, c.NVDA, D("12.5"), D("118.40"), D("131.20"))
    state.set_position(a, c.ES, D(2), D("250012.50"), D("5050.25"))
    state.set_position(a, c.AAPL_C200, D(5), D("350.65"), D("4.10"))
    state.set_position(a, c.SPY, D(-20), D("520.10"), D("512.30"))
    state.set_position(b, c.MSFT, D("0.3"), D("310.10"), D("415.20"))
    state.set_position(b, c.GOOGL, D(40), D("140.00"), D("165.30"))
    state.set_position(b, c.SAP, D(25), D("180.00"), D("190.00"))
    state.set_position(b, c.SPY_P500, D(-3), D("612.35"), D("5.20"))
    state.set_position(b, c.MES, D(4), D("25010.00"), D("5048.00"))
    state.set_position(u, c.TSLA, D(-50), D("250.00"), D("240.00"))
    state.set_position(u, c.VOD, D(1500), D("0.75"), D("0.72"))
    state.set_position(u, c.BRK_B, D(8), D("402.00"), D("410.00"))
    state.set_position(u, c.AMZN, D("2.75"), D("175.00"), D("181.00"))
    return state


def _trade_size(quantity: Decimal, fraction: Decimal, fractional: bool) -> Decimal:
    step = D("0.0001") if fractional else D(1)
    size = (abs(quantity) * fraction).quantize(step, rounding=ROUND_HALF_UP)
    return max(size, step)


def next_demo_fill(state: SimState, step: int) -> tuple[str, int, Decimal] | None:
    """The `step`-th demo trade: (account, conId, signed shares), cycling add → close → flip."""
    account_index, contract = _TRADERS[step % len(_TRADERS)]
    account = DEMO_ACCOUNTS[account_index]
    holding = state.holdings.get((account, contract.con_id))
    quantity = holding.quantity if holding is not None else D(0)
    fractional = quantity != quantity.to_integral_value()
    side = 1 if quantity >= 0 else -1
    action = step % 3
    if quantity == 0 or action == 0:  # add on the same side (or re-open)
        shares = _trade_size(quantity or D(10), D("0.2"), fractional) * side
    elif action == 1:  # partial close
        shares = -_trade_size(quantity, D("0.4"), fractional) * side
        if abs(shares) >= abs(quantity):
            shares = -quantity / 2 if fractional else -side * max(D(1), abs(quantity) // 2)
    else:  # flip through zero to half the size on the other side
        shares = -(quantity + _trade_size(quantity, D("0.5"), fractional) * side)
    return (account, contract.con_id, shares) if shares else None


def _walk(rng: random.Random, price: Decimal) -> Decimal:
    move = D(rng.randint(-30, 30)) / D(10_000)  # ±0.3 % per tick
    return max(D("0.01"), (price * (1 + move)).quantize(D("0.01")))


async def run_demo(sim: GatewaySimulator, timing: DemoTiming) -> None:
    """Drive the demo on the simulator's loop until cancelled."""
    rng = random.Random(timing.seed)
    tick = 0
    fills = 0
    while True:
        await asyncio.sleep(timing.tick)
        tick += 1
        state = sim.state
        moves = {
            con_id: _walk(rng, price)
            for con_id, price in state.prices.items()
            if price is not None and price.is_finite()
        }
        sim.set_prices(moves)
        if timing.fill_every and tick % timing.fill_every == 0:
            trade = next_demo_fill(state, fills)
            fills += 1
            if trade is not None:
                account, con_id, shares = trade
                price = state.prices.get(con_id) or D(100)
                sim.fill(account, con_id, shares, price)
        if tick == timing.vanish_after:
            account_index, contract = _VANISHING
            if (DEMO_ACCOUNTS[account_index], contract.con_id) in state.holdings:
                sim.remove_position(DEMO_ACCOUNTS[account_index], contract.con_id)
