"""IB rows → domain values, once per row: exact Decimals, UTC times, unset values as None.

Position (61) and portfolio (7) rows are decoded here straight from the wire's text fields
instead of through ib_insync's objects: ib_insync reads an empty quantity as 0.0 (which would
look like an explicit close, DESIGN rule 3) and drops a row with a garbled number silently (which
would look like an absent position, rule 2). Reading the text also keeps Decimal-typed fields
(quantities, since server version 163) exact without a detour through float.

Doubles (prices, avgCost, money) become `Decimal(str(float))`: the shortest text that round-trips
the double IB meant, so 190.5 stays 190.5 and never 190.49999999999999.
TWS's unset double (Java's Double.MAX_VALUE), NaN and ±Infinity become None.

Executions (11) still come through ib_insync's `Fill` (its floats follow the same rule); their
commission reports (59) are read from the text too, because ib_insync turns an unset realizedPNL
into 0.0 — indistinguishable from a real break-even close (see `commission_fields`). Their times
are read from the text as well (`execution_time`): ib_insync reads a zone-less time in this
machine's zone, a UTC `-` form likewise, and loses which form it was.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.account_values import (
    CASH_BALANCE,
    KEPT_TAGS,
    NET_LIQUIDATION,
    NET_LIQUIDATION_BY_CURRENCY,
    TOTAL_CASH_VALUE,
)
from app.domain.fast_init import fast_init
from app.domain.values import (
    ONE,
    ZERO,
    BrokerPosition,
    Contract,
    ExchangeRate,
    Fill,
    PositionKey,
    Side,
)

UNSET_DOUBLE = sys.float_info.max
# Texts ibapi treats as UNSET_DECIMAL in Decimal-typed fields (tws-protocol.md §2).
UNSET_QUANTITY_TEXTS = frozenset(
    {
        "",
        "2147483647",
        "9223372036854775807",
        "-9223372036854775808",
        "1.7976931348623157E308",
    }
)
_UNSET_QUANTITY_FLOATS = frozenset({2147483647.0, 9223372036854775807.0, -9223372036854775808.0})
# Security types whose strike means something; for the rest TWS sends 0.0.
OPTION_TYPES = frozenset({"OPT", "FOP", "WAR", "IOPT"})

POSITION_FIELDS = 16
PORTFOLIO_FIELDS = 20
COMMISSION_FIELDS = 8


class RowError(ValueError):
    """A broker row that cannot be used (DESIGN rule 10); the message says why."""


@fast_init
@dataclass(frozen=True, slots=True)
class Mark:
    """Market data of one position from a portfolio row; None where IB left a value unset."""

    market_price: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class ExecTime:
    """An execution's time as TWS sent it, read into UTC.

    `zone` is the zone it was read in; `zoned` is False when TWS named none and the TWS login's
    zone (the tws_timezone setting) was assumed. `ambiguous` is set when that local time occurs
    twice (the hour clocks go back) and the earlier instant was taken.
    """

    at: datetime
    zone: str
    zoned: bool
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Commission:
    """One commission report: None where IB left the value unset."""

    commission: Decimal | None
    currency: str
    realized_pnl: Decimal | None


# ---------------------------------------------------------------------------- numbers


def double(value: float) -> Decimal | None:
    """An IB double as an exact Decimal; None for unset (Double.MAX_VALUE), NaN or ±inf."""
    if not math.isfinite(value) or abs(value) >= UNSET_DOUBLE:
        return None
    if value == 0:
        return ZERO  # also turns -0.0 into a plain zero
    text = repr(value)
    # 80.0 is the integer 80: keep Decimal("80"), not Decimal("80.0").
    return Decimal(text[:-2] if text.endswith(".0") else text)


PLAIN_DIGITS = 15
"""A plain decimal text of at most this many digits (DBL_DIG) is what `double` makes of it."""


def double_text(text: str) -> Decimal | None:
    """A double field's text (`""` and unparseable text are unset too)."""
    if not text:
        return None
    # The usual text — a price like "178.24": plain ASCII digits, at most one point and sign,
    # at most 15 digits, no trailing fractional zero — is read as is. Any decimal of at most 15
    # significant digits survives the trip through a double, and the shortest text that reads
    # back as that double (repr) is then its own digits: Decimal(repr(float(text))) has the
    # same digits and exponent as Decimal(text) (tests/broker/test_convert.py holds the two
    # equal). It saves the float, its repr and a call for each of the three doubles of every
    # portfolio row (~60,000 in a full sync of 20,000 positions).
    body = text[1:] if text[0] == "-" else text
    digits = body.replace(".", "", 1)
    if (
        len(digits) <= PLAIN_DIGITS
        and digits.isdigit()
        and digits.isascii()
        and (body[-1] != "0" or "." not in body)
    ):
        value = Decimal(text)
        return value if value else ZERO  # "0", "-0": the plain zero, as `double` gives it
    try:
        return double(float(text))
    except ValueError:
        return None


SHARED_QUANTITY_TEXT = 6
"""Quantity texts this short are decoded once into one shared Decimal (see quantity_text)."""
SHARED_QUANTITIES = 4096
_shared_quantities: dict[str, Decimal] = {}


def quantity_text(text: str) -> Decimal:
    """A Decimal-typed quantity field, exactly as sent; RowError for unset or not a number.

    A short text ("100", "-2500") repeats across thousands of rows, and a position and its
    portfolio row carry it twice: it is decoded once into one shared (immutable) Decimal, at
    most SHARED_QUANTITIES distinct texts remembered (the event loop's thread is the only
    caller: ib_insync's decoder runs there).
    """
    if len(text) <= SHARED_QUANTITY_TEXT:
        known = _shared_quantities.get(text)
        if known is None:
            known = _quantity(text)
            if len(_shared_quantities) < SHARED_QUANTITIES:
                _shared_quantities[text] = known
        return known
    return _quantity(text)


def _quantity(text: str) -> Decimal:
    if text in UNSET_QUANTITY_TEXTS:
        raise RowError("quantity unset" if not text else f"quantity unset ({text})")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"quantity {text[:20]!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"quantity is {text}")
    return value if value != 0 else ZERO


def quantity(value: float) -> Decimal:
    """A quantity ib_insync already made a float (execution shares)."""
    if value in _UNSET_QUANTITY_FLOATS:
        raise RowError("quantity unset")
    converted = double(value)
    if converted is None:
        raise RowError("quantity unset or not a number")
    return converted


def multiplier_text(text: str) -> Decimal:
    """`""` (stocks) is 1; otherwise a positive number."""
    if not text:
        return ONE
    value = double_text(text)
    if value is None or value <= 0:
        raise RowError(f"multiplier {text[:20]!r} is not a positive number")
    return value


def strike_value(value: Decimal | None, sec_type: str) -> Decimal | None:
    """TWS sends strike 0.0 for everything but options; that is "no strike", not zero."""
    if value is None or (value == 0 and sec_type not in OPTION_TYPES):
        return None
    return value


def con_id_text(text: str) -> int:
    """A conId field; RowError unless a positive integer (0 means TWS did not say)."""
    try:
        con_id = int(text)
    except ValueError:
        raise RowError(f"conId {text[:20]!r} is not a number") from None
    if con_id <= 0:
        raise RowError("no conId")
    return con_id


def row_key(account: str, con_id: str) -> PositionKey | None:
    """The key of a raw row when it has a usable one (for SkippedRow), else None."""
    try:
        return (account, con_id_text(con_id)) if account else None
    except RowError:
        return None


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is read as local time, as ib_insync does)."""
    return moment.astimezone(UTC)


def execution_time(text: str, tws_zone: str) -> ExecTime:
    """An execDetails time field as an aware UTC time; RowError when it cannot be read honestly.

    TWS sends one of (sources: ib_insync issues #287 and #671, rust-ibapi PR #387, IBKR's
    "Changes in the date/time field" note on interactivebrokers.github.io/tws-api/orders.html):
    - `yyyyMMdd  HH:mm:ss` (older TWS; one or two spaces): local time of the TWS login's zone,
      which TWS does not name; read in `tws_zone` (the tws_timezone setting).
    - `yyyyMMdd HH:mm:ss <zone>` (server version 200 and later, e.g. `US/Eastern`): that zone.
    - `yyyyMMdd-HH:mm:ss`: IB's UTC form (TWS 10.17+), as #671 observed for executions.
    - seconds since the epoch (UTC), which ib_insync's parser also accepts.
    A named zone the tz database does not know, or a zone-less time that does not exist in
    `tws_zone` (inside the hour clocks skip forward: the setting must be wrong), is a RowError,
    never a guess. A local time that occurs twice (the hour clocks go back; TWS sends no offset)
    takes the earlier instant, as ib_insync does, and says so in `ambiguous` for the caller to
    log.
    """
    raw = text.strip()
    if raw.isdigit():
        return ExecTime(datetime.fromtimestamp(int(raw), UTC), "UTC", zoned=True)
    zoned = True
    if len(raw) >= 17 and raw[8] == "-" and " " not in raw:
        stamp, zone_name = raw[:8] + raw[9:], "UTC"
    else:
        date, _, rest = raw.partition(" ")
        clock, _, zone_name = rest.strip().partition(" ")
        stamp, zone_name = date + clock, zone_name.strip()
        if not zone_name:
            zoned, zone_name = False, tws_zone
    try:
        local = datetime.strptime(stamp, "%Y%m%d%H:%M:%S")  # noqa: DTZ007 (zone set below)
    except ValueError:
        raise RowError(f"execution time {text[:40]!r} is not yyyyMMdd HH:mm:ss") from None
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"execution time {text[:40]!r}: unknown time zone {zone_name!r}") from None
    early = local.replace(tzinfo=zone, fold=0)
    late = local.replace(tzinfo=zone, fold=1)
    ambiguous = False
    if early.utcoffset() != late.utcoffset():
        # Either the wall time occurs twice (fall back) or not at all (spring forward).
        if early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
            raise RowError(
                f"execution time {text[:40]!r} does not exist in {zone_name} (clocks skip that "
                f"hour); {'check the tws_timezone setting' if not zoned else 'TWS sent it so'}"
            )
        ambiguous = True
    return ExecTime(early.astimezone(UTC), zone_name, zoned=zoned, ambiguous=ambiguous)


# ---------------------------------------------------------------------------- rows
# A row's strings are interned: 20,000 positions hold a few dozen account codes, currencies,
# exchanges and security types, and the ledger's lifecycles the same symbols
# (app.db.repository.rows interns them alike); split from the wire each is a new string per row.
_intern = sys.intern


def position_fields(fields: list[str]) -> BrokerPosition:
    """A position row (61, version 3, 16 fields) without market data; RowError if unusable.

    `61|3|account|conId|symbol|secType|expiry|strike|right|multiplier|exchange|currency|
    localSymbol|tradingClass|position|avgCost`
    """
    if len(fields) != POSITION_FIELDS:
        raise RowError(f"position row has {len(fields)} fields, expected {POSITION_FIELDS}")
    (
        _,
        _,
        account,
        con_id,
        symbol,
        sec_type,
        expiry,
        strike,
        right,
        multiplier,
        exchange,
        currency,
        local_symbol,
        _trading_class,
        position,
        avg_cost,
    ) = fields
    if not account:
        raise RowError("no account")
    contract = Contract(
        con_id=con_id_text(con_id),
        symbol=_intern(symbol),
        sec_type=_intern(sec_type),
        currency=_intern(currency),
        exchange=_intern(exchange),
        local_symbol=_intern(local_symbol),
        multiplier=multiplier_text(multiplier),
        expiry=_intern(expiry),
        strike=strike_value(double_text(strike), sec_type),
        right=_intern(right),
    )
    qty = quantity_text(position)
    cost = double_text(avg_cost)
    if cost is None:
        if qty != 0:
            raise RowError(f"average cost {avg_cost[:24]!r} unset or not a number")
        cost = ZERO  # a closed position's avgCost means nothing
    return BrokerPosition(
        account=_intern(account), contract=contract, quantity=qty, average_cost=cost
    )


def portfolio_fields(fields: list[str]) -> tuple[PositionKey, Decimal, Mark]:
    """A portfolio row (7, version 8, 20 fields) → (key, quantity, market data).

    `7|8|conId|symbol|secType|expiry|strike|right|multiplier|primaryExchange|currency|
    localSymbol|tradingClass|position|marketPrice|marketValue|averageCost|unrealizedPNL|
    realizedPNL|accountName`. Only the market data is used: quantities come from position rows.
    """
    if len(fields) != PORTFOLIO_FIELDS:
        raise RowError(f"portfolio row has {len(fields)} fields, expected {PORTFOLIO_FIELDS}")
    account = fields[19]
    if not account:
        raise RowError("no account")
    key = (_intern(account), con_id_text(fields[2]))
    mark = market_mark(double_text(fields[14]), double_text(fields[15]), double_text(fields[17]))
    return key, quantity_text(fields[13]), mark


NO_PRICE = Mark(None, None, None)
"""A portfolio row whose market price is no price: its value and unrealized P&L are none either."""


def market_mark(price: Decimal | None, value: Decimal | None, unrealized: Decimal | None) -> Mark:
    """A portfolio row's market data; a market price of 0 or below is "no price" (None).

    Without market data (no subscription, delayed data not enabled, a contract that has not
    traded) TWS still sends a portfolio row, priced 0 or -1: -1 is IB's "no bid/ask" mark
    (https://github.com/erdewit/ib_insync/issues/124, erdewit: an avgCost went wrong "when the
    midpoint price is used and one of bid or ask is -1"). IB's market-data requests say the same
    by error: 354 "Requested market data is not subscribed" (IB's Message Codes,
    http://interactivebrokers.github.io/tws-api/message_codes.html; seen in
    atreyuxtrading/atreyu-backtrader-api#8), 10089/10168 likewise, 10167 "Displaying delayed
    market data" (https://github.com/wboayue/rust-ibapi/pull/672 lists them); the portfolio
    row carries no such code, only the price. Such a price must never price an exit (issue 16,
    item 6).
    TWS derives the row's marketValue (price × quantity × multiplier) and unrealizedPNL
    (marketValue − cost) from that price, so both are dropped with it: an unrealized loss of the
    whole cost is not a fact. A genuinely negative price (crude oil futures in April 2020) is
    therefore "no price" too: the ledger then waits or estimates, it never books a wrong exit.
    """
    if price is None or price <= 0:
        return NO_PRICE
    return Mark(price, value, unrealized)


def commission_fields(fields: list[str]) -> tuple[str, Commission]:
    """A commission report (59, 8 fields) → (execId, Commission).

    Decision on realizedPNL: TWS sends Java's Double.MAX_VALUE when it has none (an opening
    fill). ib_insync's decoder reads `float(text or 0)` and its wrapper then replaces
    UNSET_DOUBLE by 0.0, so from `Fill.commissionReport` "unset" and "a real 0.00 P&L" look the
    same. We read the text instead: unset, empty, NaN or ±inf → None (the `executions` table
    stores NULL, never 0.0 for unknown); a literal zero stays Decimal 0. Commission likewise.
    """
    if len(fields) != COMMISSION_FIELDS:
        raise RowError(f"commission report has {len(fields)} fields, expected {COMMISSION_FIELDS}")
    exec_id = fields[2]
    if not exec_id:
        raise RowError("commission report without execId")
    return exec_id, Commission(
        commission=double_text(fields[3]),
        currency=fields[4],
        realized_pnl=double_text(fields[5]),
    )


def contract_from_ib(c: Any) -> Contract:
    """An ib_insync Contract (of a fill) as a domain Contract."""
    sec_type = str(c.secType)
    strike = double(float(c.strike)) if c.strike is not None else None
    return Contract(
        con_id=con_id_text(str(c.conId)),
        symbol=str(c.symbol),
        sec_type=sec_type,
        currency=str(c.currency),
        exchange=str(c.exchange or c.primaryExchange or ""),
        local_symbol=str(c.localSymbol),
        multiplier=multiplier_text(str(c.multiplier or "")),
        expiry=str(c.lastTradeDateOrContractMonth),
        strike=strike_value(strike, sec_type),
        right=str(c.right),
    )


def fill_from_ib(ib_fill: Any, commission: Commission | None, time: ExecTime | None = None) -> Fill:
    """An ib_insync Fill plus our own reading of its commission report and time (`time`; None:
    ib_insync's, which read a zone-less time in ib.TimezoneTWS); RowError if unusable."""
    ex = ib_fill.execution
    account = str(ex.acctNumber)
    if not account:
        raise RowError("no account")
    try:
        side = Side(ex.side)
    except ValueError:
        raise RowError(f"side {str(ex.side)[:10]!r} is neither BOT nor SLD") from None
    shares = quantity(float(ex.shares))
    if shares <= 0:
        raise RowError("shares not positive")
    price = double(float(ex.price))
    if price is None:
        raise RowError("price unset or not a number")
    return Fill(
        exec_id=str(ex.execId),
        account=account,
        contract=contract_from_ib(ib_fill.contract),
        side=side,
        shares=shares,
        price=price,
        time=time.at if time is not None else utc(ex.time),
        perm_id=int(ex.permId),
        order_ref=str(ex.orderRef),
        commission=commission.commission if commission else None,
        commission_currency=commission.currency if commission else "",
        realized_pnl=commission.realized_pnl if commission else None,
    )


# ---------------------------------------------------------------------------- account values
ACCOUNT_VALUE_FIELDS = 6
"""`6|2|key|value|currency|accountName` (updateAccountValue, tws-protocol.md §6)."""

EXCHANGE_RATE_TAG = "ExchangeRate"
BASE = "BASE"
"""The currency field of the account's base-currency rows. TWS sends, per currency held,
`Currency` (value: the currency's code) and `ExchangeRate` (value: that currency in the base
currency), and once more for `BASE`: `Currency BASE BASE` and `ExchangeRate 1.00 BASE` — the
`BASE` rows do not name the base currency. Its code shows only as the currency of the
single-currency summary values (NetLiquidation, TotalCashValue, ...): a recorded TWS download in
PyAlgoTrade's IB test fixture (TestEClientSocket.reqAccountUpdates: `ExchangeRate 1.00 BASE`,
`1.02131 CHF`, `1.00 USD`); IBKR API docs, "Account Updates": http://interactivebrokers.github.io/
tws-api/account_updates.html (the values are those of TWS's Account Window)."""
BASE_CURRENCY_TAGS = frozenset({NET_LIQUIDATION, TOTAL_CASH_VALUE})
"""Summary values TWS sends once, in the account's base currency (not per currency: those are
NetLiquidationByCurrency, CashBalance). Both are kept too (app.domain.account_values)."""
LEDGER_TAGS = frozenset({NET_LIQUIDATION_BY_CURRENCY, CASH_BALANCE})
"""The per-currency (and BASE) ledger values of NetLiq and cash the ledger keeps."""


def base_currency_named(tag: str, currency: str) -> str | None:
    """The base currency an updateAccountValue row names, if it names one: the currency of a
    base-currency summary value; never `BASE` itself nor an empty currency."""
    if tag in BASE_CURRENCY_TAGS and currency not in ("", BASE):
        return currency
    return None


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One updateAccountValue row, as text (only the few tags the ledger keeps are read)."""

    account: str
    tag: str
    value: str
    currency: str


def account_value_fields(fields: list[str]) -> AccountValue:
    """An updateAccountValue (6) message's fields; RowError when it is not one we can read."""
    if len(fields) != ACCOUNT_VALUE_FIELDS:
        raise RowError(f"account value with {len(fields)} fields")
    _, _, tag, value, currency, account = fields
    return AccountValue(account, tag, value, currency)


def exchange_rate_value(text: str) -> Decimal | None:
    """An `ExchangeRate` value as sent (exact text); None when unset, unparseable or not > 0.

    A rate is a fact used only beside the ledger (base-currency figures): a bad one is dropped,
    never turned into a guess.
    """
    text = text.strip()
    if double_text(text) is None:  # unset (Double.MAX_VALUE), NaN, ±inf or not a number
        return None
    value = Decimal(text)  # the text itself, not the double: exact as sent
    return value if value > 0 else None


LEDGER_PREFIX = "$LEDGER-"
"""TWS may prefix per-currency (ledger) keys with `$LEDGER-` (since May 2026, a setting on by
default for new users: TWS API changelog, "API Settings: Per-Currency Account Value Prefix")."""


def kept_account_value(tag: str, value: str) -> tuple[str, str] | None:
    """(tag, value text) of a NetLiq or cash row the ledger keeps, exactly as sent; None for
    other tags and for a value that is no finite number (unset, NaN: IB said nothing usable, so
    the last value stays, never a zero). Ledger-only tags are read with or without the
    `$LEDGER-` prefix; the account totals only without it (with it, the row is a currency's
    ledger entry, not the total)."""
    if tag.startswith(LEDGER_PREFIX):
        tag = tag.removeprefix(LEDGER_PREFIX)
        if tag not in LEDGER_TAGS:
            return None
    if tag not in KEPT_TAGS:
        return None
    text = value.strip()
    return (tag, text) if double_text(text) is not None else None


def exchange_rates(
    account: str,
    base_currency: str | None,
    values: dict[str, tuple[str, datetime]],
) -> list[ExchangeRate]:
    """One account's `ExchangeRate` values (currency → (value text, received at)) as rates into
    `base_currency`, sorted by currency; none while the base currency is not known (a rate
    without its base says nothing), and none for the `BASE` row itself (always 1)."""
    if not base_currency:
        return []
    rates: list[ExchangeRate] = []
    for currency in sorted(values):
        if currency in ("", BASE):
            continue
        text, at = values[currency]
        rate = exchange_rate_value(text)
        if rate is not None:
            rates.append(ExchangeRate(account, currency, base_currency, rate, at))
    return rates
