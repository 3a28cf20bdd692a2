"""Activity Flex Query XML in IB's exact layout, for tests.

The attribute names and formats are IB's (see app.flex.parse's docstring): one `Trade` element
per execution with `levelOfDetail="EXECUTION"`, `dateTime` as `yyyyMMdd;HHmmss` in US Eastern
time, `quantity` signed, `ibCommission` negative, and IB's own closed-lot rows (`Lot`) beside
them, which are not executions and must be ignored.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from app.domain.values import Contract, Fill, Side

EASTERN = ZoneInfo("America/New_York")


def flex_time(moment: datetime) -> str:
    """A UTC moment as a Flex `dateTime` (yyyyMMdd;HHmmss, US Eastern)."""
    return moment.astimezone(EASTERN).strftime("%Y%m%d;%H%M%S")


def trade_attrs(fill: Fill, **overrides: str) -> dict[str, str]:
    """A Trade row's attributes for a fill, in the order IB writes them."""
    c: Contract = fill.contract
    signed = fill.shares if fill.side is Side.BOUGHT else -fill.shares
    commission = -(fill.commission or Decimal(0))
    derivative = c.sec_type in ("OPT", "FUT", "FOP", "WAR")
    attrs = {
        "accountId": fill.account,
        "acctAlias": "",
        "model": "",
        "currency": c.currency,
        "fxRateToBase": "1",
        "assetCategory": c.sec_type,
        "symbol": c.local_symbol or c.symbol,
        "description": f"{c.symbol} description",
        "conid": str(c.con_id),
        "securityID": "",
        "securityIDType": "",
        "cusip": "",
        "isin": "",
        "listingExchange": c.exchange,
        "underlyingConid": "",
        "underlyingSymbol": c.symbol if derivative else "",
        "multiplier": str(c.multiplier),
        "strike": str(c.strike) if c.strike is not None else "",
        "expiry": c.expiry,
        "putCall": c.right,
        "tradeID": str(zlib.crc32(fill.exec_id.encode())),  # stable across runs
        "reportDate": flex_time(fill.time)[:8],
        "dateTime": flex_time(fill.time),
        "tradeDate": flex_time(fill.time)[:8],
        "settleDateTarget": "",
        "transactionType": "ExchTrade",
        "exchange": "ISLAND",
        "quantity": str(signed),
        "tradePrice": str(fill.price),
        "tradeMoney": str(signed * fill.price * c.multiplier),
        "proceeds": str(-signed * fill.price * c.multiplier),
        "taxes": "0",
        "ibCommission": str(commission) if fill.commission is not None else "",
        "ibCommissionCurrency": fill.commission_currency or c.currency,
        "netCash": "0",
        "closePrice": str(fill.price),
        "openCloseIndicator": "O" if signed > 0 else "C",
        "notes": "",
        "cost": "0",
        "fifoPnlRealized": "",  # a test that checks IB's FIFO figure sets it
        "mtmPnl": "0",
        "buySell": "BUY" if signed > 0 else "SELL",
        "ibOrderID": str(fill.perm_id or 1000),
        "ibExecID": fill.exec_id,
        "orderReference": fill.order_ref,
        "levelOfDetail": "EXECUTION",
    }
    attrs.update(overrides)
    return attrs


@dataclass
class StatementXml:
    """One FlexStatement (an account) of an Activity Flex Query."""

    account: str
    base_currency: str = "USD"
    rows: list[dict[str, str]] = field(default_factory=list)
    lots: list[dict[str, str]] = field(default_factory=list)
    trades_section: bool = True
    sections: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    """Other sections' rows: (container, element) → attributes (OptionEAE, CorporateActions,
    Transfers), written after Trades as IB orders them."""

    def row(self, container: str, element: str, **attrs: str) -> StatementXml:
        """A row of another section, with this statement's account."""
        self.sections.setdefault((container, element), []).append(
            {"accountId": self.account, **attrs}
        )
        return self

    def trade(self, fill: Fill, **overrides: str) -> StatementXml:
        """A Trade row of this statement's account."""
        self.rows.append(trade_attrs(fill, **{"accountId": self.account, **overrides}))
        return self

    def lot(self, fill: Fill) -> StatementXml:
        """IB's closed-lot row beside a closing execution (not an execution itself)."""
        attrs = trade_attrs(fill, accountId=self.account, levelOfDetail="CLOSED_LOT", ibExecID="")
        self.lots.append(attrs)
        return self

    def xml(self) -> str:
        lines = [
            f'<FlexStatement accountId="{self.account}" fromDate="20261101" '
            'toDate="20261130" period="LastMonth" whenGenerated="20261201;083015">',
            f'<AccountInformation accountId="{self.account}" acctAlias="" model="" '
            f'currency="{self.base_currency}" name="Test Trader" accountType="Individual" />',
        ]
        if self.trades_section:
            lines.append("<Trades>")
            for attrs in self.rows:
                lines.append("<Trade " + _attrs(attrs) + " />")
            for attrs in self.lots:
                lines.append("<Lot " + _attrs(attrs) + " />")
            lines.append("</Trades>")
        for (container, element), rows in self.sections.items():
            lines.append(f"<{container}>")
            lines.extend(f"<{element} " + _attrs(attrs) + " />" for attrs in rows)
            lines.append(f"</{container}>")
        lines.append("</FlexStatement>")
        return "\n".join(lines)


def document(*statements: StatementXml, kind: str = "AF") -> str:
    """A FlexQueryResponse holding these statements."""
    body = "\n".join(s.xml() for s in statements)
    return (
        f'<FlexQueryResponse queryName="position-sync" type="{kind}">\n'
        f'<FlexStatements count="{len(statements)}">\n{body}\n</FlexStatements>\n'
        "</FlexQueryResponse>\n"
    )


def contract_attrs(c: Contract) -> dict[str, str]:
    """The contract attributes every Flex row carries."""
    derivative = c.sec_type in ("OPT", "FUT", "FOP", "WAR")
    return {
        "currency": c.currency,
        "assetCategory": c.sec_type,
        "symbol": c.local_symbol or c.symbol,
        "conid": str(c.con_id),
        "listingExchange": c.exchange,
        "underlyingSymbol": c.symbol if derivative else "",
        "multiplier": str(c.multiplier),
        "strike": str(c.strike) if c.strike is not None else "",
        "expiry": c.expiry,
        "putCall": c.right,
    }


def write(path: Path, *statements: StatementXml, kind: str = "AF") -> Path:
    """Write a statement file; returns its path."""
    path.write_text(document(*statements, kind=kind), encoding="utf-8")
    return path


def _attrs(attrs: dict[str, str]) -> str:
    return " ".join(f"{name}={quoteattr(value)}" for name, value in attrs.items())
