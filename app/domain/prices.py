"""When a market price is a price: the sanity rules every exit estimate goes through.

DESIGN.md "Lifecycle and realized P&L": a reduction no fill explains is priced from IB's market
price at the sync, else the last known price; an expired future at its last price. Issue 16,
item 6: without a market data subscription, on weekends or with delayed data, TWS's portfolio
rows carry a market price of 0 or -1, or one the ledger saw long ago. Such a price is *no
price*: what it would have priced is booked without one (realized amount unknown, marked so)
or waits for the fill or statement that explains it — never at 0, -1 or an old price.

Every price the ledger stores is per unit of the contract in its currency's main unit (dollars,
not cents): IB's avgCost / multiplier, and the execution and market prices of cents-quoted
futures divided by their priceMagnifier (app.broker.contract_details).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

PRICE_MAX_AGE = timedelta(hours=24)
"""How old (ledger time: since the sync that saw it) a last known price may be and still price
an exit. A price seen before the last 24 hours is older than a trading day: across a weekend
or while the app was closed, a position that vanished may have traded at any price since."""


def is_price(value: Decimal | None) -> bool:
    """True for a usable market price: finite and above 0 (IB sends 0 or -1 without data)."""
    return value is not None and value.is_finite() and value > 0
