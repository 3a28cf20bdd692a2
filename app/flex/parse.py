"""Activity Flex Query XML → app.domain.statements.Statement.

The shape (IB, "Activity Flex Query Reference" in the Reporting guide; the same element and
attribute names as the open-source parser csingley/ibflex, ibflex/Types.py, and ib_insync's
flexreport.py, which reads `FlexQueryResponse` with `root.iter(topic)`):

    <FlexQueryResponse queryName="…" type="AF">
      <FlexStatements count="1">
        <FlexStatement accountId="U123" fromDate="20261101" toDate="20261130" period="…"
                       whenGenerated="20261201;083015">
          <AccountInformation accountId="U123" currency="USD" …/>
          <Trades>
            <Trade accountId="U123" currency="USD" fxRateToBase="1" assetCategory="STK"
                   symbol="AAPL" conid="265598" listingExchange="NASDAQ" multiplier="1"
                   dateTime="20261124;103000" quantity="-40" tradePrice="160.07"
                   ibCommission="-1.0035" ibCommissionCurrency="USD" buySell="SELL"
                   ibExecID="0000e0d5.6551d6b5.01.01" tradeID="…" ibOrderID="…"
                   levelOfDetail="EXECUTION" transactionType="ExchTrade" …/>
            <Lot … levelOfDetail="CLOSED_LOT"/>   (closed lots: not executions)
          </Trades>
        </FlexStatement>
      </FlexStatements>
    </FlexQueryResponse>

What the ledger takes from a Trade (IB's conventions, converted once here): `ibExecID` is the
API's execId (IB: "ibExecID — the IB execution id", the id TWS hands the API), so statement and
live fills merge by it; `quantity` is signed (negative: sold); `ibCommission` is negative for a
charge (the API's commission report has it positive); `dateTime` is `yyyyMMdd;HHmmss` (the
default of the query's date/time settings; `yyyy-MM-dd` and `HH:mm:ss` are the other choices)
in the statement's time zone, which the XML does not name: the `flex_timezone` setting
(America/New_York, IB's reporting zone, unless the trader's statements say otherwise).

Untrusted input: a DOCTYPE (and so any entity declaration) is refused before anything is
read — no entity is ever expanded (the "billion laughs" and external-entity attacks need one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn
from xml.parsers import expat
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.statements import Statement, StatementError
from app.domain.values import ONE, Contract, ExchangeRate, Fill, Side

ACTIVITY = "AF"
"""`FlexQueryResponse/@type` of an Activity Flex Query (a Trade Confirmation one is "TCF")."""

EXECUTION = "EXECUTION"
"""`Trade/@levelOfDetail` of one execution (ORDER rows sum executions and carry no ibExecID)."""

DERIVATIVES = frozenset({"OPT", "FOP", "FUT", "WAR", "IOPT", "FSFOP", "FSOPT"})
"""Asset categories whose Flex `symbol` is the contract's local symbol (e.g. "ESZ6", the OCC
option symbol) and whose API `symbol` is Flex's `underlyingSymbol`."""

_TRUNCATED = frozenset(
    expat.errors.codes[message]
    for message in (expat.errors.XML_ERROR_NO_ELEMENTS, expat.errors.XML_ERROR_UNCLOSED_TOKEN)
)

_ZONE_NAMES = {"EST": "America/New_York", "EDT": "America/New_York", "ET": "America/New_York"}

_MOMENT = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})"  # yyyyMMdd or yyyy-MM-dd
    r"(?:[;, ]\s*(\d{2}):?(\d{2}):?(\d{2}))?"  # ;HHmmss or ;HH:mm:ss (also "," or " ")
    r"(?:\s+([A-Za-z][A-Za-z0-9/_+-]*))?$"  # a zone, when the statement names one
)


def read_statement(path: Path, zone: ZoneInfo) -> Statement:
    """Parse one statement file; StatementError (naming the file) for anything unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StatementError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    return parse_statement(data, str(path), zone)


def parse_statement(data: bytes, source: str, zone: ZoneInfo) -> Statement:
    """Parse an Activity Flex Query XML document (one or more FlexStatements, any accounts)."""
    document = _Document(source)
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = document.refuse_doctype
    parser.EntityDeclHandler = document.refuse_entity
    parser.StartElementHandler = document.start
    parser.EndElementHandler = document.end
    parser.CharacterDataHandler = document.text
    document.parser = parser
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        # expat's "no element found" / "unclosed token" at the end: the file was cut short.
        what = "truncated" if exc.code in _TRUNCATED else "not well-formed XML"
        raise StatementError(
            f"{source}: {what} (line {exc.lineno}, column {exc.offset}): "
            f"{expat.ErrorString(exc.code)}"
        ) from None
    return document.statement(zone)


@dataclass(slots=True)
class _Row:
    attrs: dict[str, str]
    line: int


@dataclass(slots=True)
class _Document:
    """Collects what the expat callbacks see (one pass, line numbers kept for messages)."""

    source: str
    parser: expat.XMLParserType | None = None
    root: str = ""
    root_attrs: dict[str, str] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    statements: int = 0
    trades_sections: int = 0
    trades: list[_Row] = field(default_factory=list)
    other_levels: set[str] = field(default_factory=set)
    bases: dict[str, str] = field(default_factory=dict)
    error_fields: dict[str, str] = field(default_factory=dict)

    def _line(self) -> int:
        return self.parser.CurrentLineNumber if self.parser is not None else 0

    def refuse_doctype(self, *_: object) -> NoReturn:
        raise StatementError(
            f"{self.source}: line {self._line()}: has a DOCTYPE; refused (a Flex statement has "
            "none, and entity declarations are never expanded)"
        )

    def refuse_entity(self, *_: object) -> NoReturn:
        raise StatementError(f"{self.source}: line {self._line()}: declares an entity; refused")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if not self.stack:
            self.root, self.root_attrs = name, dict(attrs)
        parent = self.stack[-1] if self.stack else ""
        self.stack.append(name)
        if name == "FlexStatement":
            self.statements += 1
        elif name == "Trades":
            self.trades_sections += 1
        elif name == "Trade" and parent == "Trades":
            level = attrs.get("levelOfDetail", EXECUTION)
            if level.upper() == EXECUTION:
                self.trades.append(_Row(dict(attrs), self._line()))
            else:
                self.other_levels.add(level)
        elif name == "AccountInformation":
            account, currency = attrs.get("accountId", ""), attrs.get("currency", "")
            if account and currency:
                self.bases[account] = currency

    def end(self, _: str) -> None:
        self.stack.pop()

    def text(self, data: str) -> None:
        if self.root == "FlexStatementResponse" and len(self.stack) == 2:
            name = self.stack[-1]
            self.error_fields[name] = self.error_fields.get(name, "") + data

    def statement(self, zone: ZoneInfo) -> Statement:
        if self.root == "FlexStatementResponse":
            code = self.error_fields.get("ErrorCode", "").strip()
            message = (
                self.error_fields.get("ErrorMessage") or self.error_fields.get("code") or ""
            ).strip()
            raise StatementError(
                f"{self.source}: a Flex Web Service answer, not a statement"
                + (f": error {code}" if code else "")
                + (f": {message}" if message else "")
            )
        if self.root != "FlexQueryResponse":
            raise StatementError(
                f"{self.source}: not a Flex statement (root element <{self.root}>, "
                "expected <FlexQueryResponse>)"
            )
        kind = self.root_attrs.get("type", ACTIVITY)
        if kind != ACTIVITY:
            raise StatementError(
                f"{self.source}: a Flex statement of type {kind!r}; an Activity Flex Query "
                f"(type {ACTIVITY!r}) is needed"
            )
        if not self.statements:
            raise StatementError(f"{self.source}: holds no <FlexStatement>")
        if not self.trades_sections:
            raise StatementError(
                f"{self.source}: the statement has no Trades section; include Trades "
                "(Execution level) in the Flex query"
            )
        if not self.trades and self.other_levels:
            levels = ", ".join(sorted(self.other_levels))
            raise StatementError(
                f"{self.source}: its Trades are at {levels} level only; choose Execution in "
                "the Flex query's Trades options (ibExecID is needed to merge with live fills)"
            )
        fills: list[Fill] = []
        contracts: dict[int, Contract] = {}
        rates: list[ExchangeRate] = []
        for row in self.trades:
            fill, rate = _trade(row, self.source, zone, self.bases)
            fills.append(fill)
            contracts[fill.contract.con_id] = fill.contract
            if rate is not None:
                rates.append(rate)
        accounts = frozenset(f.account for f in fills) | frozenset(self.bases)
        return Statement(
            sources=(self.source,),
            fills=tuple(fills),
            contracts=contracts,
            base_currencies=dict(self.bases),
            rates=tuple(rates),
            accounts=accounts,
        )


# ---------------------------------------------------------------------------- one trade
class _RowError(Exception):
    pass


def _trade(
    row: _Row, source: str, zone: ZoneInfo, bases: dict[str, str]
) -> tuple[Fill, ExchangeRate | None]:
    attrs = row.attrs
    try:
        return _convert(attrs, zone, bases)
    except _RowError as exc:
        exec_id = attrs.get("ibExecID") or attrs.get("tradeID") or "?"
        raise StatementError(f"{source}: line {row.line}: Trade {exec_id}: {exc}") from None


def _convert(
    attrs: dict[str, str], zone: ZoneInfo, bases: dict[str, str]
) -> tuple[Fill, ExchangeRate | None]:
    account = _required(attrs, "accountId")
    exec_id = attrs.get("ibExecID", "").strip()
    if not exec_id:
        # Book trades (an expiry, an assignment, a delivery) have no execution id; IB's
        # tradeID names the row in every statement that holds it.
        trade_id = attrs.get("tradeID", "").strip()
        if not trade_id:
            raise _RowError("has neither ibExecID nor tradeID: add ibExecID to the query")
        exec_id = f"flex-trade:{trade_id}"
    quantity = _decimal(attrs, "quantity")
    if quantity == 0:
        raise _RowError("quantity is 0")
    price = _decimal(attrs, "tradePrice")
    if price < 0:
        raise _RowError(f"tradePrice {attrs['tradePrice']} is negative")
    time = _time(attrs, zone)
    commission: Decimal | None = None
    if attrs.get("ibCommission", "").strip():
        # IB books a charge as a negative amount; the ledger (like the API's commission report)
        # keeps the cost positive. A rebate stays a negative cost.
        commission = -_decimal(attrs, "ibCommission")
    contract = _contract(attrs)
    perm = attrs.get("ibOrderID", "").strip()
    fill = Fill(
        exec_id=exec_id,
        account=account,
        contract=contract,
        side=Side.BOUGHT if quantity > 0 else Side.SOLD,
        shares=abs(quantity),
        price=price,
        time=time,
        perm_id=int(perm) if perm.isdigit() else 0,
        order_ref=attrs.get("orderReference", "").strip(),
        commission=commission,
        commission_currency=attrs.get("ibCommissionCurrency", "").strip(),
        realized_pnl=None,  # IB's fifoPnlRealized is FIFO, not the API's per-fill figure
        seen_at=None,
    )
    rate = None
    base = bases.get(account)
    if base and attrs.get("fxRateToBase", "").strip() and contract.currency != base:
        value = _decimal(attrs, "fxRateToBase")
        if value > 0:
            rate = ExchangeRate(account, contract.currency, base, value, time)
    return fill, rate


def _contract(attrs: dict[str, str]) -> Contract:
    con_id_text = _required(attrs, "conid")
    if not con_id_text.isdigit() or int(con_id_text) <= 0:
        raise _RowError(f"conid {con_id_text!r} is not an IB contract id")
    sec_type = attrs.get("assetCategory", "").strip() or "STK"
    symbol = _required(attrs, "symbol")
    underlying = attrs.get("underlyingSymbol", "").strip()
    api_symbol = underlying if sec_type in DERIVATIVES and underlying else symbol
    multiplier = ONE
    if attrs.get("multiplier", "").strip():
        multiplier = _decimal(attrs, "multiplier")
        if multiplier <= 0:
            raise _RowError(f"multiplier {attrs['multiplier']} is not positive")
    strike = None
    if sec_type in DERIVATIVES and attrs.get("strike", "").strip():
        strike = _decimal(attrs, "strike") or None
    right = attrs.get("putCall", "").strip()[:1].upper()
    return Contract(
        con_id=int(con_id_text),
        symbol=api_symbol,
        sec_type=sec_type,
        currency=_required(attrs, "currency"),
        exchange=attrs.get("listingExchange", "").strip(),
        local_symbol=symbol,
        multiplier=multiplier,
        expiry=re.sub(r"\D", "", attrs.get("expiry", "")),
        strike=strike,
        right=right if right in ("C", "P") else "",
    )


def _required(attrs: dict[str, str], name: str) -> str:
    value = attrs.get(name, "").strip()
    if not value:
        raise _RowError(f"has no {name} (add it to the Flex query's Trades fields)")
    return value


def _decimal(attrs: dict[str, str], name: str) -> Decimal:
    text = _required(attrs, name).replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _RowError(f"{name} {text!r} is not a number") from None
    if not value.is_finite():
        raise _RowError(f"{name} {text!r} is not a finite number")
    return value


def _time(attrs: dict[str, str], zone: ZoneInfo) -> datetime:
    text = attrs.get("dateTime", "").strip()
    if not text and attrs.get("tradeDate", "").strip() and attrs.get("tradeTime", "").strip():
        text = f"{attrs['tradeDate'].strip()};{attrs['tradeTime'].strip()}"
    if not text:
        raise _RowError("has no dateTime (add Date/Time to the Flex query's Trades fields)")
    return moment(text, zone)


def moment(text: str, zone: ZoneInfo) -> datetime:
    """A Flex date/time (`yyyyMMdd;HHmmss`, in `zone` unless it names its own) as UTC.

    A local time inside the hour the clocks skip does not exist: refused. One in the hour they
    repeat is read as the earlier (the same rules as live execution times, app.broker).
    """
    match = _MOMENT.match(text.strip())
    if match is None or match[4] is None:
        raise _RowError(f"dateTime {text!r} is not yyyyMMdd;HHmmss")
    year, month, day, hour, minute, second, named = match.groups()
    if named:
        try:
            zone = ZoneInfo(_ZONE_NAMES.get(named.upper(), named))
        except (ZoneInfoNotFoundError, ValueError):
            raise _RowError(f"dateTime {text!r} names an unknown time zone") from None
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        raise _RowError(f"dateTime {text!r} is not a real date and time") from None
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise _RowError(f"dateTime {text!r} does not exist in {zone.key} (the clocks skip it)")
    return utc
