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

What the ledger takes from each row: Trades at EXECUTION level (app.flex.trades: `ibExecID` is
the API's execId, so statement and live fills merge by it); OptionEAE, CorporateActions and
Transfers when the query includes them (app.flex.actions: fills where a fill states exactly what
IB booked, else a note that the row is not applied); AccountInformation's base currency. Times
are `yyyyMMdd;HHmmss` (the default of the query's date/time settings; `yyyy-MM-dd` and
`HH:mm:ss` are the other choices) in the statement's time zone, which the XML does not name: the
`flex_timezone` setting (America/New_York unless the trader's statements say otherwise).

Untrusted input: a DOCTYPE (and so any entity declaration) is refused before anything is
read — no entity is ever expanded (the "billion laughs" and external-entity attacks need one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn, TypeVar
from xml.parsers import expat
from zoneinfo import ZoneInfo

from app.domain.statements import Statement, StatementError
from app.domain.values import Contract, ExchangeRate, Fill
from app.flex.actions import (
    ConversionPart,
    Skipped,
    SplitPart,
    corporate_action,
    net_splits,
    option_event,
    pair_conversions,
)
from app.flex.actions import transfer as transfer_note
from app.flex.rows import RowError
from app.flex.trades import trade_fill

T = TypeVar("T")

ACTIVITY = "AF"
"""`FlexQueryResponse/@type` of an Activity Flex Query (a Trade Confirmation one is "TCF")."""

EXECUTION = "EXECUTION"
"""`Trade/@levelOfDetail` of one execution (ORDER rows sum executions and carry no ibExecID)."""

SECTIONS = {
    ("Trades", "Trade"): "trades",
    ("OptionEAE", "OptionEAE"): "option_events",
    ("CorporateActions", "CorporateAction"): "corporate_actions",
    ("Transfers", "Transfer"): "transfers",
}
"""(container, row element) → the list a row is collected in (IB's section names)."""

_TRUNCATED = frozenset(
    expat.errors.codes[message]
    for message in (expat.errors.XML_ERROR_NO_ELEMENTS, expat.errors.XML_ERROR_UNCLOSED_TOKEN)
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
    option_events: list[_Row] = field(default_factory=list)
    corporate_actions: list[_Row] = field(default_factory=list)
    transfers: list[_Row] = field(default_factory=list)
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
                self.trades.append(_Row(attrs, self._line()))  # expat's own dict
            else:
                self.other_levels.add(level)
        elif (parent, name) in SECTIONS:
            rows: list[_Row] = getattr(self, SECTIONS[parent, name])
            rows.append(_Row(attrs, self._line()))
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
        rates: list[ExchangeRate] = []
        for row in self.trades:
            fill, rate = self._row(row, "Trade", lambda a: trade_fill(a, zone, self.bases))
            fills.append(fill)
            if rate is not None:
                rates.append(rate)
        skipped: list[Skipped] = []
        known = {f.exec_id for f in fills}
        for row in self.option_events:
            event = self._row(row, "OptionEAE", lambda a: option_event(a, zone))
            if isinstance(event, Skipped):
                skipped.append(self._noted(row, event))
            elif event.exec_id not in known:  # a BookTrade row of Trades holds it already
                fills.append(event)
        parts: list[SplitPart] = []
        sides: list[ConversionPart] = []
        for row in self.corporate_actions:
            action = self._row(row, "CorporateAction", lambda a: corporate_action(a, zone))
            if isinstance(action, Skipped):
                skipped.append(self._noted(row, action))
            elif isinstance(action, ConversionPart):
                sides.append(replace(action, where=f"{self.source}: line {row.line}"))
            else:
                where = f"{self.source}: line {row.line}"
                parts.append(replace(action, side=replace(action.side, where=where)))
        splits, unsplit, forward = net_splits(parts)
        fills.extend(splits)
        skipped.extend(unsplit)
        sides.extend(forward)
        conversions, unpaired = pair_conversions(sides)
        skipped.extend(unpaired)
        skipped.extend(self._noted(row, transfer_note(row.attrs)) for row in self.transfers)
        contracts: dict[int, Contract] = {f.contract.con_id: f.contract for f in fills}
        accounts = frozenset(f.account for f in fills) | frozenset(self.bases)
        return Statement(
            sources=(self.source,),
            fills=tuple(fills),
            contracts=contracts,
            base_currencies=dict(self.bases),
            rates=tuple(rates),
            accounts=accounts,
            not_applied=tuple(s.text for s in skipped),
            conversions=tuple(conversions),
        )

    def _row(self, row: _Row, element: str, convert: Callable[[dict[str, str]], T]) -> T:
        try:
            return convert(row.attrs)
        except RowError as exc:
            attrs = row.attrs
            name = attrs.get("ibExecID") or attrs.get("tradeID") or attrs.get("actionID") or "?"
            raise StatementError(
                f"{self.source}: line {row.line}: {element} {name}: {exc}"
            ) from None

    def _noted(self, row: _Row, skipped: Skipped) -> Skipped:
        return Skipped(f"{self.source}: line {row.line}: {skipped.text}")
