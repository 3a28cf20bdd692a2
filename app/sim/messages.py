"""Server → client messages at server version 176, one encoder per message kind.

Layouts follow tws-protocol.md §6; the installed clients' decoders are the final word, and
tests/sim decodes every kind below with ibapi's own decoder. Field counts are fixed: ib_insync
drops a 7, 11, 59 or 61 with one field too many or too few.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from zoneinfo import ZoneInfo

from app.sim import fields as f
from app.sim.model import Contract, Execution, Holding, Price


class Out(IntEnum):
    """Message ids the simulator sends (a separate name space from the request ids)."""

    ORDER_STATUS = 3
    ERROR = 4
    OPEN_ORDER = 5
    ACCOUNT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCOUNT_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXEC_DETAILS = 11
    MANAGED_ACCOUNTS = 15
    CURRENT_TIME = 49
    OPEN_ORDER_END = 53
    CONTRACT_DATA_END = 52
    ACCOUNT_DOWNLOAD_END = 54
    EXEC_DETAILS_END = 55
    COMMISSION_REPORT = 59
    POSITION = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDERS_END = 102


Fields = list[str]


def handshake_reply(now: datetime) -> Fields:
    """The two-field reply to the version range: our version and TWS's connection time."""
    return [str(176), now.strftime("%Y%m%d %H:%M:%S ") + (now.tzname() or "EST")]


def error(req_id: int, code: int, text: str) -> Fields:
    """`4|2|reqId|code|text|advancedOrderRejectJson`."""
    return [str(Out.ERROR), "2", str(req_id), str(code), text, ""]


def next_valid_id(order_id: int) -> Fields:
    return [str(Out.NEXT_VALID_ID), "1", str(order_id)]


def managed_accounts(accounts: list[str]) -> Fields:
    return [str(Out.MANAGED_ACCOUNTS), "1", ",".join(accounts)]


def current_time(epoch_seconds: int) -> Fields:
    return [str(Out.CURRENT_TIME), "1", str(epoch_seconds)]


def _contract(c: Contract, exchange: str) -> Fields:
    """conId … tradingClass, the 11 contract fields shared by 61, 11 and 5."""
    return [
        str(c.con_id),
        c.symbol,
        c.sec_type,
        c.expiry,
        f.double(c.strike),
        c.right,
        "" if c.multiplier is None else f.quantity(c.multiplier),
        exchange,
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class,
    ]


def _quantity(holding: Holding) -> str:
    return "" if holding.empty_quantity else f.quantity(holding.quantity)


def position(h: Holding) -> Fields:
    """`61|3|account|contract…|position|avgCost` (16 fields)."""
    return [
        str(Out.POSITION),
        "3",
        h.account,
        *_contract(h.contract, h.contract.exchange),
        _quantity(h),
        f.double(h.avg_cost),
    ]


def position_multi(req_id: int, h: Holding) -> Fields:
    """`71|1|reqId|account|contract…|position|avgCost|modelCode` (18 fields; ib_insync's
    decoder.positionMulti)."""
    return [
        str(Out.POSITION_MULTI),
        "1",
        str(req_id),
        h.account,
        *_contract(h.contract, h.contract.exchange),
        _quantity(h),
        f.double(h.avg_cost),
        "",
    ]


def position_multi_end(req_id: int) -> Fields:
    return [str(Out.POSITION_MULTI_END), "1", str(req_id)]


def position_end() -> Fields:
    return [str(Out.POSITION_END), "1"]


def account_value(key: str, value: str, currency: str, account: str) -> Fields:
    return [str(Out.ACCOUNT_VALUE), "2", key, value, currency, account]


def portfolio_value(h: Holding, price: Price, market_value: Price, unrealized: Price) -> Fields:
    """`7|8|contract (primaryExchange)…|position|price|value|avgCost|unrealized|realized|acct`."""
    c = h.contract
    return [
        str(Out.PORTFOLIO_VALUE),
        "8",
        str(c.con_id),
        c.symbol,
        c.sec_type,
        c.expiry,
        f.double(c.strike),
        c.right,
        "" if c.multiplier is None else f.quantity(c.multiplier),
        c.primary_exchange,
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class,
        _quantity(h),
        f.double(price),
        f.double(market_value),
        f.double(h.avg_cost),
        f.double(unrealized),
        f.double(h.realized_pnl),
        h.account,
    ]


def account_time(hh_mm: str) -> Fields:
    return [str(Out.ACCOUNT_TIME), "1", hh_mm]


def account_download_end(account: str) -> Fields:
    return [str(Out.ACCOUNT_DOWNLOAD_END), "1", account]


def contract_data(req_id: int, c: Contract) -> Fields:
    """`10|reqId|symbol|secType|lastTradeDate|strike|right|exchange|currency|localSymbol|
    marketName|tradingClass|conId|minTick|multiplier|orderTypes|validExchanges|priceMagnifier|
    …|stockType|minSize|sizeIncrement|suggestedSizeIncrement` (40 fields, no secIds).

    At 176 (≥ MIN_SERVER_VER_SIZE_RULES 164) there is no version field and no mdSizeMultiplier;
    the fund fields start at 179, lastTradeDate at 182: ib_insync's `Decoder.contractDetails`
    and ibapi's `processContractDataMsg` read exactly these fields.
    """
    min_tick = "0.25" if c.sec_type in ("FUT", "FOP") else "0.01"
    return [
        str(Out.CONTRACT_DATA),
        str(req_id),
        c.symbol,
        c.sec_type,
        c.expiry,
        f.double(c.strike),
        c.right,
        c.exchange or c.primary_exchange or "SMART",
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class or c.symbol,  # marketName
        c.trading_class or c.symbol,
        str(c.con_id),
        min_tick,
        "" if c.multiplier is None else f.quantity(c.multiplier),
        "ACTIVETIM,LMT,MKT,STP",  # orderTypes
        c.exchange or c.primary_exchange or "SMART",  # validExchanges
        str(c.price_magnifier),
        "0",  # underConId
        c.symbol,  # longName
        c.primary_exchange,
        c.expiry[:6],  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        "US/Central" if c.sec_type in ("FUT", "FOP") else "US/Eastern",  # timeZoneId
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "0",  # evMultiplier
        "0",  # secIdList count
        "0",  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        "",  # marketRuleIds
        c.expiry,  # realExpirationDate
        "",  # stockType
        "1",  # minSize
        "1",  # sizeIncrement
        "1",  # suggestedSizeIncrement
    ]


def contract_data_end(req_id: int) -> Fields:
    return [str(Out.CONTRACT_DATA_END), "1", str(req_id)]


def account_update_multi(
    req_id: int, account: str, key: str, value: str, currency: str, model_code: str = ""
) -> Fields:
    return [
        str(Out.ACCOUNT_UPDATE_MULTI),
        "1",
        str(req_id),
        account,
        model_code,
        key,
        value,
        currency,
    ]


def account_update_multi_end(req_id: int) -> Fields:
    return [str(Out.ACCOUNT_UPDATE_MULTI_END), "1", str(req_id)]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return [str(Out.ACCOUNT_SUMMARY), "1", str(req_id), account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    return [str(Out.ACCOUNT_SUMMARY_END), "1", str(req_id)]


EXEC_TIME_FORMS = ("zoned", "local", "utc")


def exec_time_text(when: datetime, zone: str, form: str = "zoned") -> str:
    """An execution time as TWS words it; `form` picks which TWS:

    - "zoned" (default): `YYYYMMDD HH:MM:SS <IANA zone>`, what TWS sends at server version 200
      and later (rust-ibapi PR #387: "20260130 10:46:26 America/New_York").
    - "local": `YYYYMMDD  HH:MM:SS` (two spaces), older TWS: wall time of the TWS login's zone,
      which the text does not name (ib_insync issue #287).
    - "utc": `YYYYMMDD-HH:MM:SS`, IB's UTC form (IBKR tws-api "Changes in the date/time
      field"; seen on execution times in ib_insync issue #671).
    """
    if form == "utc":
        return when.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
    local = when.astimezone(ZoneInfo(zone))
    if form == "local":
        return local.strftime("%Y%m%d  %H:%M:%S")
    return local.strftime("%Y%m%d %H:%M:%S ") + zone


def exec_details(req_id: int, e: Execution, zone: str, form: str = "zoned") -> Fields:
    """`11|reqId|orderId|contract…|execId|time|acct|exchange|side|shares|price|…` (31 fields)."""
    return [
        str(Out.EXEC_DETAILS),
        str(req_id),
        str(e.order_id),
        *_contract(e.contract, e.exchange),
        e.exec_id,
        exec_time_text(e.time, zone, form),
        e.account,
        e.exchange,
        e.side,
        f.quantity(e.shares),
        f.double(e.price),
        str(e.perm_id),
        str(e.client_id),
        "0",  # liquidation
        f.quantity(e.cum_qty),
        f.double(e.avg_price),
        e.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        "1",  # lastLiquidity: added
    ]


def exec_details_end(req_id: int) -> Fields:
    return [str(Out.EXEC_DETAILS_END), "1", str(req_id)]


def commission_report(e: Execution) -> Fields:
    """`59|1|execId|commission|currency|realizedPNL|yield|yieldRedemptionDate`."""
    return [
        str(Out.COMMISSION_REPORT),
        "1",
        e.exec_id,
        f.double(e.commission),
        e.commission_currency,
        f.double(e.realized_pnl),  # None → unset, as TWS sends for opening fills
        f.UNSET_DOUBLE,
        "",
    ]


def order_status(e: Execution, status: str, filled: Decimal, remaining: Decimal) -> Fields:
    """`3|orderId|status|filled|remaining|avgFillPrice|permId|parentId|lastFillPrice|…`."""
    avg = e.avg_price if filled else Decimal(0)
    last = e.price if filled else Decimal(0)
    return [
        str(Out.ORDER_STATUS),
        str(e.order_id),
        status,
        f.quantity(filled),
        f.quantity(remaining),
        f.double(avg),
        str(e.perm_id),
        "0",  # parentId
        f.double(last),
        str(e.client_id),
        "",  # whyHeld
        f.double(Decimal(0)),  # mktCapPrice
    ]


def open_order(e: Execution, status: str) -> Fields:
    """openOrder for the (manual, market) order behind a fill: 135 fields after the id.

    Clients create their Trade objects only from openOrder, and fire execDetails and
    commissionReport events only for fills of a known Trade (tws-protocol.md §7).
    """
    u = f.UNSET_DOUBLE
    i = f.UNSET_INT
    action = "BUY" if e.side == "BOT" else "SELL"
    # fmt: off
    return [
        str(Out.OPEN_ORDER),
        str(e.order_id),  # 1
        *_contract(e.contract, e.exchange),  # 2-12
        action, f.quantity(e.shares), "MKT", "0.0", "0.0", "DAY", "",  # 13-19
        e.account, "", "0", e.order_ref, str(e.client_id), str(e.perm_id),  # 20-25
        "0", "0", "0", "", "",  # 26-30 outsideRth hidden discretionaryAmt goodAfterTime alloc
        "", "", "", "",  # 31-34 FA group/method/percentage/profile
        "", "", "", "", "",  # 35-39 modelCode goodTillDate rule80A percentOffset settlingFirm
        "0", "", "-1", "0",  # 40-43 shortSaleSlot designatedLocation exemptCode auctionStrategy
        "", "", "", "", "",  # 44-48 startingPrice stockRefPrice delta stockRange lower/upper
        i, "0", "0", "0", "", "3",  # 49-54 displaySize block sweep allOrNone minQty ocaType
        "0", "0", "", "0", "0",  # 55-59 eTradeOnly firmQuoteOnly nbboPriceCap parentId trigger
        "", "0", "None", "",  # 60-63 volatility volatilityType dnOrderType dnAuxPrice
        "0", "", "", "", "?", "0", "0", "",  # 64-71 delta-neutral details (62 is non-empty)
        "0", "0", "", "",  # 72-75 continuousUpdate refPriceType trailStopPrice trailingPercent
        "", "", "", "0", "0",  # 76-80 basisPoints type comboLegsDescrip legs orderLegs
        "0", i, i, "",  # 81-84 smartComboParams scaleInit scaleSubs scalePriceIncrement
        "", "0", "", "IB", "0",  # 85-89 hedgeType optOutSmart clearingAcct intent notHeld
        "0", "", "0", "0", status,  # 90-94 dnContract algo solicited whatIf status
        u, u, u, u, u, u, u, u, u,  # 95-103 margin before/change/after
        u, u, u, "", "",  # 104-108 commission min max currency warningText
        "0", "0", "0",  # 109-111 randomizeSize randomizePrice conditions
        "None", u, u, u, u, u, u, "0",  # 112-119 adjusted order fields
        "", "", "",  # 120-122 softDollarTier
        "0", "1", "0",  # 123-125 cashQty dontUseAutoPriceForHedge isOmsContainer
        "0", "0", "", "", "0",  # 126-130
        "", "", "", "", "",  # 131-135
    ]
    # fmt: on


def open_order_end() -> Fields:
    return [str(Out.OPEN_ORDER_END), "1"]


def completed_orders_end() -> Fields:
    return [str(Out.COMPLETED_ORDERS_END)]


def pnl(req_id: int, daily: Price, unrealized: Price, realized: Price) -> Fields:
    """`94|reqId|dailyPnL|unrealizedPnL|realizedPnL` (no version field)."""
    return [str(Out.PNL), str(req_id), f.double(daily), f.double(unrealized), f.double(realized)]


def pnl_single(
    req_id: int, pos: Decimal, daily: Price, unrealized: Price, realized: Price, value: Price
) -> Fields:
    """`95|reqId|pos|dailyPnL|unrealizedPnL|realizedPnL|value` (no version field)."""
    return [
        str(Out.PNL_SINGLE),
        str(req_id),
        f.quantity(pos),
        f.double(daily),
        f.double(unrealized),
        f.double(realized),
        f.double(value),
    ]
