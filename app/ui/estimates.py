"""How the window tells an estimated or unknown realized amount from an exact one (Qt-free).

DESIGN.md "Every realized amount has a basis": `exact` amounts read as plain figures; an
`estimated` one carries "≈" (and is drawn italic, in a paler colour: app.ui.models.keyed); an
`unknown` one reads "?". Each says why in its tooltip: which part is estimated, from what price
(`price_source`) or which missing fact (the event's `note`).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.records import StoredEvent
from app.domain.values import Lifecycle, PnlBasis, PriceSource
from app.ui import formatting as fmt

APPROX = "≈ "
UNKNOWN = "?"

MARKED = (PnlBasis.ESTIMATED, PnlBasis.UNKNOWN)

LEGEND = (
    "Plain: exact (fills with price and commission known). "
    "≈ italic: an estimate. ?: could not be priced. Hover a marked figure to see why."
)

_FROM = {
    PriceSource.MARKET: "priced at IB's market price at the sync (no fill explains this change)",
    PriceSource.LAST_KNOWN: "priced at the last known price (no fill, no market price)",
    PriceSource.MANUAL: "priced at the exit price you gave (Mark closed), not a fill",
    PriceSource.FILLS: "from fills whose commission IB has not reported yet (counted as 0)",
}


def marked(basis: PnlBasis | None) -> bool:
    """Whether a figure of this basis is shown as an estimate or unknown."""
    return basis in MARKED


def lifecycle_text(life: Lifecycle) -> str:
    """A lifecycle's realized P&L: 400.00 / ≈ 700.00 / 400.00 + ? / ?."""
    amount = fmt.money(life.realized_pnl)
    if life.pnl_basis is PnlBasis.UNKNOWN:
        if not life.realized_pnl and not life.realized_pnl_estimated:
            return UNKNOWN
        prefix = APPROX if life.realized_pnl_estimated else ""
        return f"{prefix}{amount} + {UNKNOWN}"
    if life.pnl_basis is PnlBasis.ESTIMATED:
        return APPROX + amount
    return amount


def event_text(event: StoredEvent) -> str:
    """An event's realized P&L: 400.00 / ≈ 300.00 / ?."""
    if event.pnl_basis is PnlBasis.UNKNOWN:
        return UNKNOWN
    amount = fmt.money(event.realized_pnl)
    return APPROX + amount if event.pnl_basis is PnlBasis.ESTIMATED and amount else amount


def event_why(event: StoredEvent) -> str:
    """Why an event's realized amount is not exact ("" when it is)."""
    if event.pnl_basis is PnlBasis.UNKNOWN:
        why = "Unknown: no price was available (no fill, no market or last known price); "
        why += "the amount is not counted in any total."
    elif event.pnl_basis is PnlBasis.ESTIMATED:
        source = _FROM.get(event.price_source) if event.price_source else None
        why = f"Estimated: {source or 'not priced from fills alone'}."
    else:
        return ""
    if event.note:
        why += f"\n{event.note}"
    return why + "\nA later fact (a fill, a commission report) replaces the estimate."


def _event_line(event: StoredEvent) -> str:
    kind = event.kind.value.replace("_", " ").capitalize()
    moved = f"{fmt.quantity(event.quantity_before)} → {fmt.quantity(event.quantity_after)}"
    price = f" at {fmt.price(event.price)}" if event.price is not None else ""
    source = _FROM.get(event.price_source) if event.price_source else None
    line = f"• {fmt.local_time(event.occurred_at)} {kind} {moved}{price}: {event_text(event)}"
    if event.pnl_basis is PnlBasis.UNKNOWN:
        line += "\n   no price"
    elif source:
        line += f"\n   {source}"
    return line + (f"\n   {event.note}" if event.note else "")


def lifecycle_why(life: Lifecycle) -> str:
    """Which part of a lifecycle's realized P&L is not exact ("" when all of it is)."""
    if life.pnl_basis not in MARKED:
        return ""
    total = fmt.money(life.realized_pnl)
    lines: list[str] = []
    if life.pnl_basis is PnlBasis.UNKNOWN:
        lines.append(
            "Unknown: part of the realized P&L could not be priced and is not in the "
            f"{total} shown."
        )
    if life.realized_pnl_estimated:
        estimated = fmt.money(life.realized_pnl_estimated)
        exact = fmt.money(life.realized_pnl_exact)
        lines.append(
            f"Estimated: {estimated} of the {total} realized rests on estimates; "
            f"{exact} is exact (fills)."
        )
    return "\n".join(lines)


SEE_HISTORY = "Select the position: its history says which event and why."


def events_why(events: Iterable[StoredEvent]) -> str:
    """From what a lifecycle's estimates come: one line per estimated or unknown event."""
    lines = [_event_line(e) for e in events if marked(e.pnl_basis)]
    return "\n".join(lines) if lines else SEE_HISTORY
