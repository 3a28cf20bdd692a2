"""Where the live broker and the local cache disagree, per (account, conId)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.domain.values import BrokerPosition, Lifecycle, PositionKey


class Discrepancy(StrEnum):
    """How one key's broker row and cached OPEN lifecycle compare."""

    MISSING_AT_BROKER = "missing_at_broker"  # cached OPEN, the broker does not report it
    NOT_CACHED = "not_cached"  # the broker reports it, the cache has no OPEN lifecycle
    QUANTITY_DIFFERS = "quantity_differs"  # both, with different quantities


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement, with the sentence a tooltip shows."""

    key: PositionKey
    kind: Discrepancy
    explanation: str


def compare(
    cached: Iterable[Lifecycle],
    broker: Iterable[BrokerPosition] | None,
) -> dict[PositionKey, Difference]:
    """Disagreements by key. `broker` None means no live broker data (offline): then only the
    warnings the ledger itself recorded (missing since the last complete snapshot) are shown."""
    # Keys spelled out rather than through `.key`: the window runs this over 20,000 rows.
    open_rows = {(p.account, p.contract.con_id): p for p in cached if p.is_open}
    found: dict[PositionKey, Difference] = {}
    for key, position in open_rows.items():
        if position.missing_since is not None:
            found[key] = Difference(
                key,
                Discrepancy.MISSING_AT_BROKER,
                f"The broker has not reported this position since "
                f"{position.missing_since:%d %b %H:%M} UTC and no fills explain it. Check its "
                "history, then Mark closed… if it was closed elsewhere.",
            )
    if broker is None:
        return found
    live = {(row.account, row.contract.con_id): row for row in broker if row.quantity}
    for key, position in open_rows.items():
        row = live.get(key)
        if row is None:
            if key not in found:
                found[key] = Difference(key, Discrepancy.MISSING_AT_BROKER, _NOT_REPORTED)
        elif row.quantity != position.quantity and key not in found:
            found[key] = Difference(
                key,
                Discrepancy.QUANTITY_DIFFERS,
                f"The broker reports {row.quantity}, the cache holds {position.quantity}; "
                "the next sync will book the difference.",
            )
    for key in live.keys() - open_rows.keys():
        found[key] = Difference(
            key,
            Discrepancy.NOT_CACHED,
            f"The broker reports {live[key].quantity} but the cache has no open position yet; "
            "the next sync will open it.",
        )
    return found


_NOT_REPORTED = (
    "The broker does not report this cached OPEN position right now; the next complete sync "
    "will record it as missing unless fills explain it."
)
