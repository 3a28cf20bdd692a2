"""Client → server message ids at server version 176 (tws-protocol.md §5)."""

from __future__ import annotations

from enum import IntEnum


class In(IntEnum):
    """Request ids the simulator knows by name. Unknown ids are recorded all the same."""

    REQ_MKT_DATA = 1
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    EXERCISE_OPTIONS = 21
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


# Messages that would trade or change orders: a read-only app must never send them (DESIGN rule
# 11), and tests assert their absence from the simulator's inbound record.
ORDER_MESSAGES = frozenset(
    {In.PLACE_ORDER, In.CANCEL_ORDER, In.REQ_GLOBAL_CANCEL, In.EXERCISE_OPTIONS}
)


def request_name(msg_id: int) -> str:
    """`REQ_POSITIONS` for 61, `UNKNOWN_300` for an id we do not know."""
    try:
        return In(msg_id).name
    except ValueError:
        return f"UNKNOWN_{msg_id}"
