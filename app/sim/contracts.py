"""A small catalogue of realistic contracts the named scenarios share."""

from __future__ import annotations

from decimal import Decimal

from app.sim.model import Contract

AAPL = Contract(265598, "AAPL", "STK", "USD", "NASDAQ", "NASDAQ", "AAPL", "NMS")
MSFT = Contract(272093, "MSFT", "STK", "USD", "NASDAQ", "NASDAQ", "MSFT", "NMS")
TSLA = Contract(76792991, "TSLA", "STK", "USD", "NASDAQ", "NASDAQ", "TSLA", "NMS")
NVDA = Contract(4815747, "NVDA", "STK", "USD", "NASDAQ", "NASDAQ", "NVDA", "NMS")
AMZN = Contract(3691937, "AMZN", "STK", "USD", "NASDAQ", "NASDAQ", "AMZN", "NMS")
GOOGL = Contract(208813720, "GOOGL", "STK", "USD", "NASDAQ", "NASDAQ", "GOOGL", "NMS")
SPY = Contract(756733, "SPY", "STK", "USD", "ARCA", "ARCA", "SPY", "SPY")
BRK_B = Contract(72063691, "BRK B", "STK", "USD", "NYSE", "NYSE", "BRK B", "BRK B")
SAP = Contract(14204, "SAP", "STK", "EUR", "IBIS", "IBIS", "SAP", "XETRA")
VOD = Contract(13006, "VOD", "STK", "GBP", "LSE", "LSE", "VOD", "VOD")
# AMTD IDEA Group's 1-for-3 reverse split of November 2023 moved the stock to a new conId (the
# old one renamed AMTD.OLD in statements): conIds as in the Flex rows quoted in
# github.com/ib-edavki/ib-edavki/issues/106.
AMTD_OLD = Contract(597279242, "AMTD", "STK", "USD", "NYSE", "NYSE", "AMTD", "AMTD")
AMTD = Contract(665145378, "AMTD", "STK", "USD", "NYSE", "NYSE", "AMTD", "AMTD")


def _future(con_id: int, symbol: str, local_symbol: str, multiplier: int) -> Contract:
    # Futures rows carried an empty exchange in real position captures (tws-protocol.md §6).
    return Contract(
        con_id,
        symbol,
        "FUT",
        primary_exchange="CME",
        local_symbol=local_symbol,
        trading_class=symbol,
        expiry="20271217",
        multiplier=Decimal(multiplier),
    )


def _option(con_id: int, symbol: str, local_symbol: str, strike: int, right: str) -> Contract:
    return Contract(
        con_id,
        symbol,
        "OPT",
        local_symbol=local_symbol,
        trading_class=symbol,
        expiry="20271217",
        strike=Decimal(strike),
        right=right,
        multiplier=Decimal(100),
    )


ES = _future(495512563, "ES", "ESZ7", 50)
MES = _future(495512572, "MES", "MESZ7", 5)
AAPL_C200 = _option(700000001, "AAPL", "AAPL  271217C00200000", 200, "C")
SPY_P500 = _option(700000002, "SPY", "SPY   271217P00500000", 500, "P")

# Corn on CBOT: 5,000 bushels, quoted in US cents per bushel, so IB's contract details carry
# priceMagnifier 100 and executions and market data are in cents while avgCost is in dollars
# (nautechsystems/nautilus_trader#2531; QuantConnect/Lean PR #5930 names ZC, ZS and KE).
ZC = Contract(
    532513362,
    "ZC",
    "FUT",
    primary_exchange="CBOT",
    local_symbol="ZCZ7",
    trading_class="ZC",
    expiry="20271214",
    multiplier=Decimal(5000),
    price_magnifier=100,
)
