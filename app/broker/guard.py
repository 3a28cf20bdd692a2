"""The read-only guard: no order, cancel, exercise or FA-change message ever leaves the socket.

DESIGN rule 11. TWS's own "Read-Only API" setting is the user's choice and may be off, and
ib_insync happily sends placeOrder from any IB object, so the adapter checks every outgoing
message itself, at both ib_insync layers that write bytes (app.broker.ib_internals.intercept_sends):
every framed request, and the raw bytes (so a caller that bypasses the client is caught too).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from ib_insync import Client

from app.broker.ib_internals import intercept_sends

# Client → server ids (tws-protocol.md §5 and ibapi's message ids) that trade, change or cancel
# orders, or change account allocation. A read-only ledger has no reason to send any of them.
FORBIDDEN_REQUESTS: Mapping[int, str] = {
    3: "placeOrder (also modifies an order)",
    4: "cancelOrder",
    19: "replaceFA (changes allocation groups)",
    21: "exerciseOptions",
    58: "reqGlobalCancel",
}
# reqAutoOpenOrders with autoBind=1 makes TWS hand manually entered orders to this client, after
# which they count as API orders it may modify. Reading fills does not need that (see
# ib_internals.ReadOnlyIB), so binding is refused like an order message; autoBind=0 is harmless.
REQ_AUTO_OPEN_ORDERS = 15

_LENGTH = struct.Struct(">I")
_API_PREFIX = b"API\0"

Observer = Callable[[list[str]], None]


class OrderMessageBlockedError(PermissionError):
    """Raised instead of sending a message that could trade or change orders."""

    def __init__(self, msg_id: int, name: str) -> None:
        super().__init__(
            f"refused to send message {msg_id} ({name}): Position Sync is read-only "
            "and never sends order, cancel or exercise messages"
        )
        self.msg_id = msg_id


def check_fields(fields: list[str]) -> None:
    """Raise OrderMessageBlockedError if these request fields would trade or change orders."""
    if not fields:
        return
    try:
        msg_id = int(fields[0])
    except ValueError:
        return  # the handshake's version text, or nothing TWS would act on
    name = FORBIDDEN_REQUESTS.get(msg_id)
    if name is not None:
        raise OrderMessageBlockedError(msg_id, name)
    # reqAutoOpenOrders is `15|1|bAutoBind`.
    if msg_id == REQ_AUTO_OPEN_ORDERS and len(fields) > 2 and fields[2] not in ("", "0"):
        raise OrderMessageBlockedError(msg_id, "reqAutoOpenOrders with autoBind")


def check_frames(data: bytes) -> None:
    """The same check on raw socket bytes: optional `API\\0`, then length-prefixed frames."""
    view = data[len(_API_PREFIX) :] if data.startswith(_API_PREFIX) else data
    offset = 0
    while offset + _LENGTH.size <= len(view):
        (size,) = _LENGTH.unpack_from(view, offset)
        start = offset + _LENGTH.size
        payload = view[start : start + size]
        check_fields(payload.decode("utf-8", errors="replace").split("\0")[:3])
        offset = start + size


def install_guard(client: Client, observer: Observer | None = None) -> None:
    """Guard an ib_insync Client's outgoing messages; `observer` sees every allowed request.

    Must be installed before connecting. The observer gets the request's fields (message id
    first) before the bytes are queued, so it may note which requests are in flight.
    """

    def check_message(fields: list[str]) -> None:
        check_fields(fields)
        if observer is not None:
            observer(fields)

    intercept_sends(client, check_message, check_frames)
