"""The simulator's records: contracts, holdings, executions and accounts (Decimal throughout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# A market price: a Decimal (which may be NaN or ±Infinity on purpose) or None for TWS's unset.
Price = Decimal | None


@dataclass(frozen=True, slots=True)
class Contract:
    """An instrument as TWS describes it in position, portfolio and execution rows."""

    con_id: int
    symbol: str
    sec_type: str = "STK"
    currency: str = "USD"
    exchange: str = ""  # position rows: empty for futures in real captures
    primary_exchange: str = ""  # portfolio rows
    local_symbol: str = ""
    trading_class: str = ""
    expiry: str = ""  # lastTradeDateOrContractMonth
    strike: Decimal = Decimal(0)
    right: str = ""  # C / P for options
    multiplier: Decimal | None = None  # None: sent as "" (stocks), counted as 1
    # IB's ContractDetails.priceMagnifier: 100 for cents-quoted futures (grains, cattle, cotton).
    # Their prices (executions, market data) are in cents while avgCost and every money amount
    # are in dollars: "Allows execution and strike prices to be reported consistently with market
    # data" (http://interactivebrokers.github.io/tws-api/classIBApi_1_1ContractDetails.html;
    # nautechsystems/nautilus_trader#2531: GF fills in cents, avgCost / multiplier in dollars).
    price_magnifier: int = 1

    @property
    def factor(self) -> Decimal:
        """The multiplier (1 when the contract has none)."""
        return self.multiplier if self.multiplier is not None else Decimal(1)

    @property
    def value_factor(self) -> Decimal:
        """Money per unit of quoted price per contract: multiplier ÷ priceMagnifier."""
        return self.factor / self.price_magnifier


@dataclass(slots=True)
class Holding:
    """One position of one account: IB's signed quantity and avgCost (per contract, fees in)."""

    account: str
    contract: Contract
    quantity: Decimal
    avg_cost: Decimal
    realized_pnl: Decimal = Decimal(0)  # today's, as the portfolio row's realizedPNL
    # Fault injection: send the quantity field empty in position and portfolio rows.
    empty_quantity: bool = False
    # Fault injection (Faults.position_lag): until `lag_until` (time.monotonic()), position and
    # portfolio rows still show this (quantity, avgCost) from before the latest fills.
    lagged: tuple[Decimal, Decimal] | None = None
    lag_new: bool = False  # the holding did not exist before the lagging fills: no row at all
    lag_until: float = 0.0


@dataclass(slots=True)
class Execution:
    """One fill as reported by execDetails + commissionReport."""

    exec_id: str
    account: str
    contract: Contract
    side: str  # BOT / SLD
    shares: Decimal
    price: Decimal
    time: datetime  # aware
    perm_id: int
    order_id: int = 0  # 0: entered in TWS by hand
    client_id: int = 0
    cum_qty: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    order_ref: str = ""
    commission: Decimal = Decimal(0)
    commission_currency: str = "USD"
    realized_pnl: Decimal | None = None  # None: unset (an opening fill)
    exchange: str = "SMART"
    # Not sent: the commissionReport is held back until SimState.release_commission.
    commission_pending: bool = False
    # Not sent: the simulated trading day it was booked on (SimState.day).
    day: int = 0
    # Not sent: the holding's (quantity, avgCost, realized P&L) and the cash change around this
    # fill, so a correction can re-book it and every later fill of the same key.
    before: tuple[Decimal, Decimal, Decimal] | None = None
    cash_delta: Decimal = Decimal(0)


@dataclass(slots=True)
class Account:
    """A managed account: base currency and cash per currency."""

    code: str
    base_currency: str = "USD"
    cash: dict[str, Decimal] = field(default_factory=dict)
    account_type: str = "INDIVIDUAL"
