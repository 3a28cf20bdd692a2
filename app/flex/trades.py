"""One `Trades/Trade` row at EXECUTION level → a Fill (and IB's rate to base at its time).

IB's conventions, converted once: `ibExecID` is the API's execId, so statement and live fills
merge by it; `quantity` is signed (negative: sold); `ibCommission` is negative for a charge (the
API's commission report, and the ledger, keep the cost positive); `dateTime` is
`yyyyMMdd;HHmmss` in the statement's zone; `fxRateToBase` converts the trade's currency to the
account's base currency (AccountInformation/@currency).
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from app.domain.values import ExchangeRate, Fill, Side
from app.flex.rows import RowError, contract, moment, number, required


def trade_fill(
    attrs: dict[str, str], zone: ZoneInfo, bases: dict[str, str]
) -> tuple[Fill, ExchangeRate | None]:
    """The execution a Trade row records, and IB's rate to base at its time (if any)."""
    account = required(attrs, "accountId")
    exec_id = attrs.get("ibExecID", "").strip()
    if not exec_id:
        # Book trades (an expiry, an assignment, a delivery) have no execution id; IB's
        # tradeID names the row in every statement that holds it.
        trade_id = attrs.get("tradeID", "").strip()
        transaction = attrs.get("transactionID", "").strip()
        if trade_id:
            exec_id = book_trade_id(trade_id)
        elif transaction:
            # IB's sale of a fraction a corporate action left (transactionType "FracShare",
            # exchange "--") has neither: its transactionID names it (ib-edavki issue 181,
            # PRSO's row: ibExecID="" tradeID="" transactionID="646863322").
            exec_id = transaction_id(transaction)
        else:
            raise RowError(
                "has neither ibExecID nor tradeID nor transactionID: add ibExecID to the query"
            )
    quantity = number(attrs, "quantity")
    if quantity == 0:
        raise RowError("quantity is 0")
    price = number(attrs, "tradePrice")
    if price < 0:
        raise RowError(f"tradePrice {attrs['tradePrice']} is negative")
    text = attrs.get("dateTime", "").strip()
    if not text and attrs.get("tradeDate", "").strip() and attrs.get("tradeTime", "").strip():
        text = f"{attrs['tradeDate'].strip()};{attrs['tradeTime'].strip()}"
    if not text:
        raise RowError("has no dateTime (add Date/Time to the Flex query's Trades fields)")
    time = moment(text, zone)
    commission: Decimal | None = None
    if attrs.get("ibCommission", "").strip():
        commission = -number(attrs, "ibCommission")  # a rebate stays a negative cost
    traded = contract(attrs)
    perm = attrs.get("ibOrderID", "").strip()
    fifo: Decimal | None = None
    if attrs.get("fifoPnlRealized", "").strip():
        # IB's realized P&L of this trade under FIFO lots: "for the purpose of cost basis and
        # realized profit or loss, commissions are netted" (IB's Flex reference, Trades:
        # https://www.ibkrguides.com/reportingreference/reportguide/tradesfq.htm; the basis of
        # an opening trade is its proceeds' inverse plus commission, reportguide/
        # trades_default.htm). 0 on an opening trade. IB's figure also carries wash-sale
        # adjustments, which the ledger's FIFO does not model: such a difference is flagged.
        fifo = number(attrs, "fifoPnlRealized")
    fill = Fill(
        exec_id=exec_id,
        account=account,
        contract=traded,
        side=Side.BOUGHT if quantity > 0 else Side.SOLD,
        shares=abs(quantity),
        price=price,
        time=time,
        perm_id=int(perm) if perm.isdigit() else 0,
        order_ref=attrs.get("orderReference", "").strip(),
        commission=commission,
        commission_currency=attrs.get("ibCommissionCurrency", "").strip(),
        realized_pnl=None,  # IB's fifoPnlRealized is FIFO, not the API's per-fill figure
        seen_at=None,  # a statement is IB's record of when it happened, not a live arrival
        fifo_realized_pnl=fifo,
    )
    rate = None
    base = bases.get(account)
    if base and attrs.get("fxRateToBase", "").strip() and traded.currency != base:
        value = number(attrs, "fxRateToBase")
        if value > 0:
            rate = ExchangeRate(account, traded.currency, base, value, time)
    return fill, rate


def book_trade_id(trade_id: str) -> str:
    """The ledger's execId for a booking without an IB execution id (one per IB tradeID)."""
    return f"flex-trade:{trade_id}"


def transaction_id(transaction: str) -> str:
    """The ledger's execId for a trade row IB gives only a transactionID (a FracShare sale)."""
    return f"flex-transaction:{transaction}"
