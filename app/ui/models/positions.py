"""Models of positions: the live broker rows, the cached OPEN lifecycles, the CLOSED ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.domain.values import BrokerPosition, Lifecycle
from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.models.keyed import Column, KeyedTableModel


def _symbol(contract: Any) -> str:
    return str(contract.local_symbol or contract.symbol)


def _cost_pct(row: BrokerPosition) -> Decimal | None:
    basis = abs(row.quantity) * row.average_cost
    if row.unrealized_pnl is None or not basis:
        return None
    return row.unrealized_pnl / basis * 100


def _by_account_symbol(row: Any) -> tuple[str, str, int]:
    return (row.account, _symbol(row.contract), row.contract.con_id)


# Columns both position tables show the same way (broker rows and lifecycles share these names),
# so the two sides line up column for column.
ACCOUNT = Column("Account", lambda r: r.account, lambda r: r.account, width=112)
SYMBOL = Column("Symbol", lambda r: _symbol(r.contract), lambda r: _symbol(r.contract), width=150)
TYPE = Column("Type", lambda r: r.contract.sec_type, lambda r: r.contract.sec_type, width=44)
QUANTITY = Column(
    "Qty", lambda r: r.quantity, lambda r: fmt.quantity(r.quantity), numeric=True, width=70
)
AVERAGE = Column(
    "Avg price",
    lambda r: r.average_price,
    lambda r: fmt.price(r.average_price),
    numeric=True,
    tooltip="Average price per unit (IB's avgCost ÷ multiplier), commissions included",
)
CURRENCY = Column("Ccy", lambda r: r.contract.currency, lambda r: r.contract.currency, width=44)


class BrokerModel(KeyedTableModel):
    """What TWS reports right now (the live subscription), by (account, conId)."""

    default_order = staticmethod(_by_account_symbol)

    columns = (
        ACCOUNT,
        SYMBOL,
        TYPE,
        QUANTITY,
        AVERAGE,
        Column("Last", lambda r: r.market_price, lambda r: fmt.price(r.market_price), numeric=True),
        Column(
            "Mkt value", lambda r: r.market_value, lambda r: fmt.money(r.market_value), numeric=True
        ),
        Column(
            "Unrealized",
            lambda r: r.unrealized_pnl,
            lambda r: fmt.money(r.unrealized_pnl),
            numeric=True,
            pnl=True,
        ),
        Column("Unrl %", _cost_pct, lambda r: fmt.percent(_cost_pct(r)), numeric=True, pnl=True),
        CURRENCY,
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda r: r.key, parent)


def _warning(p: Lifecycle) -> str:
    if p.missing_since is not None:
        return f"missing at broker since {fmt.local_time(p.missing_since)}"
    return ""


class CacheModel(KeyedTableModel):
    """The local ledger's OPEN lifecycles, by (account, conId)."""

    default_order = staticmethod(_by_account_symbol)

    columns = (
        ACCOUNT,
        SYMBOL,
        TYPE,
        QUANTITY,
        AVERAGE,
        Column(
            "Last",
            lambda p: p.current_price,
            lambda p: fmt.price(p.current_price),
            numeric=True,
            tooltip="The market price at the last sync",
        ),
        Column(
            "Unrealized",
            lambda p: p.unrealized_pnl,
            lambda p: fmt.money(p.unrealized_pnl),
            numeric=True,
            pnl=True,
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
        ),
        Column("Opened", lambda p: p.opened_at, lambda p: fmt.local_time(p.opened_at)),
        Column(
            "Last synced", lambda p: p.last_synced_at, lambda p: fmt.local_time(p.last_synced_at)
        ),
        Column("Warning", _warning, _warning),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda p: p.key, parent)


def _close_reason_text(p: Lifecycle) -> str:
    reason = p.close_reason.value if p.close_reason else ""
    return {
        "broker": "closed at the broker",
        "flip": "flipped to the other side",
        "manual": "marked closed by you",
        "missing": "absent at the broker (auto-closed)",
        "expired": "expired",
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
