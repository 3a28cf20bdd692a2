"""Models of positions: the live broker rows, the cached OPEN lifecycles, the CLOSED ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt

from app.domain.values import BrokerPosition, Lifecycle
from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.models.keyed import Column, KeyedTableModel

ZERO = Decimal(0)


def _symbol(contract: Any) -> str:
    return str(contract.local_symbol or contract.symbol)


def _short_symbol(contract: Any) -> str:
    """A contract in a few characters: AAPL, ESZ7, "AAPL 271217C200" for an option (IB's OCC
    local symbol, "AAPL  271217C00200000", takes more room and hides the strike in zeros)."""
    if contract.sec_type in ("OPT", "FOP", "WAR") and contract.expiry and contract.strike:
        strike = fmt.quantity(contract.strike)
        return f"{contract.symbol} {contract.expiry[2:8]}{contract.right}{strike}"
    return _symbol(contract)


def _contract_tip(row: Any) -> str:
    c = row.contract
    return f"{_symbol(c)} · {c.sec_type} · {c.currency} · conId {c.con_id} · {row.account}"


def _cost_pct(row: BrokerPosition) -> Decimal | None:
    basis = abs(row.quantity) * row.average_cost
    if row.unrealized_pnl is None or not basis:
        return None
    return row.unrealized_pnl / basis * 100


def _by_account_symbol(row: Any) -> tuple[str, str, int]:
    return (row.account, _symbol(row.contract), row.contract.con_id)


# Columns both position tables show the same way (broker rows and lifecycles share these names).
# Widths are chosen so that what a trader reads first — quantities and their difference, average,
# last, unrealized, realized — fits a 1280x800 window without scrolling (tests/ui/test_layout.py);
# the key columns are narrow; the type is in the symbol's tooltip and further right (issue 19).
ACCOUNT = Column(
    "Account", lambda r: r.account, lambda r: r.account, width=108
)  # + a flagged row's icon
SYMBOL = Column(
    "Symbol",
    lambda r: _symbol(r.contract),
    lambda r: _short_symbol(r.contract),
    width=120,
    tooltip="The contract (hover a row for its type, currency, conId and account)",
    cell_tip=_contract_tip,
)
TYPE = Column("Type", lambda r: r.contract.sec_type, lambda r: r.contract.sec_type, width=34)
QUANTITY = Column(
    "Qty", lambda r: r.quantity, lambda r: fmt.quantity(r.quantity), numeric=True, width=72
)
AVERAGE = Column(
    "Avg price",
    lambda r: r.average_price,
    lambda r: fmt.price(r.average_price),
    numeric=True,
    tooltip="Average price per unit (IB's avgCost ÷ multiplier), commissions included",
    width=76,
)
CURRENCY = Column("Ccy", lambda r: r.contract.currency, lambda r: r.contract.currency, width=40)
MONEY_WIDTH = 84
LAST_WIDTH = 77


class BrokerModel(KeyedTableModel):
    """What TWS reports right now (the live subscription), by (account, conId)."""

    read_first = 6  # up to Unrealized
    default_order = staticmethod(_by_account_symbol)

    columns = (
        ACCOUNT,
        SYMBOL,
        QUANTITY,
        AVERAGE,
        Column(
            "Last",
            lambda r: r.market_price,
            lambda r: fmt.price(r.market_price),
            numeric=True,
            width=LAST_WIDTH,
        ),
        Column(
            "Unrealized",
            lambda r: r.unrealized_pnl,
            lambda r: fmt.money(r.unrealized_pnl),
            numeric=True,
            pnl=True,
            width=MONEY_WIDTH,
        ),
        CURRENCY,
        Column(
            "Mkt value",
            lambda r: r.market_value,
            lambda r: fmt.money(r.market_value),
            numeric=True,
            width=MONEY_WIDTH,
        ),
        Column("Unrl %", _cost_pct, lambda r: fmt.percent(_cost_pct(r)), numeric=True, pnl=True),
        TYPE,
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda r: r.key, parent)


def _warning(p: Lifecycle) -> str:
    if p.missing_since is not None:
        return f"missing at broker since {fmt.local_time(p.missing_since)}"
    return ""


class CacheModel(KeyedTableModel):
    """The local ledger's OPEN lifecycles, by (account, conId)."""

    read_first = 8  # up to Realized (Δ broker included)
    default_order = staticmethod(_by_account_symbol)

    static_columns = (
        ACCOUNT,
        SYMBOL,
        QUANTITY,
        # DIFFERENCE goes here (see __init__).
        AVERAGE,
        Column(
            "Last",
            lambda p: p.current_price,
            lambda p: fmt.price(p.current_price),
            numeric=True,
            tooltip="The market price at the last sync",
            width=LAST_WIDTH,
        ),
        Column(
            "Unrealized",
            lambda p: p.unrealized_pnl,
            lambda p: fmt.money(p.unrealized_pnl),
            numeric=True,
            pnl=True,
            width=MONEY_WIDTH,
        ),
        Column(
            "Realized",
            lambda p: p.realized_pnl,
            estimates.lifecycle_text,
            numeric=True,
            pnl=True,
            tooltip=f"Realized so far in this lifecycle (partial closes). {estimates.LEGEND}",
            basis=lambda p: p.pnl_basis,
            why=estimates.lifecycle_why,
            width=MONEY_WIDTH + 4,  # room for an estimate's ≈
        ),
        CURRENCY,
        TYPE,
        Column("Opened", lambda p: p.opened_at, lambda p: fmt.local_time(p.opened_at)),
        Column(
            "Last synced", lambda p: p.last_synced_at, lambda p: fmt.local_time(p.last_synced_at)
        ),
        Column("Warning", _warning, _warning),
    )
    DIFFERENCE_AT = 3  # the column index of "Δ broker"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda p: p.key, parent)
        # Broker quantity by key while the broker side holds a full live view; None offline.
        self._broker: dict[Any, Decimal] | None = None
        difference = Column(
            "Δ broker",
            self._difference,
            lambda p: _signed(self._difference(p)),
            numeric=True,
            width=66,
            tooltip="What TWS reports minus what the ledger holds (empty: they agree, or TWS "
            "is not connected)",
        )
        static = self.static_columns
        self.columns = (*static[: self.DIFFERENCE_AT], difference, *static[self.DIFFERENCE_AT :])

    def set_broker_quantities(self, quantities: dict[Any, Decimal] | None) -> None:
        """The broker's quantities by key (None: no live view); repaints the difference."""
        if quantities == self._broker:
            return
        self._broker = quantities
        if self.rowCount():
            column = self.DIFFERENCE_AT
            self.dataChanged.emit(
                self.index(0, column),
                self.index(self.rowCount() - 1, column),
                [Qt.ItemDataRole.DisplayRole],
            )

    def _difference(self, p: Lifecycle) -> Decimal | None:
        if self._broker is None:
            return None
        difference = self._broker.get(p.key, ZERO) - p.quantity
        return difference or None


def _signed(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"+{fmt.quantity(value)}" if value > 0 else fmt.quantity(value)


def _close_reason_text(p: Lifecycle) -> str:
    reason = p.close_reason.value if p.close_reason else ""
    return {
        "broker": "closed at the broker",
        "flip": "flipped to the other side",
        "manual": "marked closed by you",
        "missing": "absent at the broker (auto-closed)",
        "expired": "expired",
        "converted": "converted to a new conId (no sale)",
    }.get(reason, reason)


class ClosedModel(KeyedTableModel):
    """CLOSED lifecycles, one row each (a contract can have many), by lifecycle id."""

    default_order = staticmethod(lambda p: (-p.closed_at.timestamp() if p.closed_at else 0, p.id))

    columns = (
        ACCOUNT,
        SYMBOL,
        TYPE,
        Column("Opened", lambda p: p.opened_at, lambda p: fmt.local_time(p.opened_at)),
        Column("Closed", lambda p: p.closed_at, lambda p: fmt.local_time(p.closed_at)),
        Column(
            "Realized",
            lambda p: p.realized_pnl,
            estimates.lifecycle_text,
            numeric=True,
            pnl=True,
            tooltip=estimates.LEGEND,
            basis=lambda p: p.pnl_basis,
            why=estimates.lifecycle_why,
        ),
        Column(
            "How",
            lambda p: p.close_reason.value if p.close_reason else "",
            _close_reason_text,
        ),
        CURRENCY,
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda p: p.id, parent)
