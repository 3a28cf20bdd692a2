"""Log hygiene: account numbers masked everywhere, and ib_insync's offline noise turned down.

ib_insync logs every position, portfolio row and fill at INFO with the full account code, and
decoder errors with the raw fields. House rule 6 wants account numbers masked in every log, so
a filter on ib_insync's loggers rewrites them before any handler sees the record.

ib_insync also logs two ERROR lines for every refused connection attempt. A closed TWS is the
normal offline state (retried every 30 s, all evening), so those become DEBUG; our status
message already says it once. The same goes for the "failed: CancelledError" line it writes when
we abandon a connect ourselves (client id in use, stop()).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from app.broker.ib_internals import CONNECT_FAILURE_LOG_PREFIXES, IB_LOGGER_NAMES

# IB account codes: one or two capital letters and at least five digits (DU1234567, U1234567,
# F1234567, DF1234567). Known codes are masked too, whatever their shape.
_ACCOUNT_LIKE = r"\b[A-Z]{1,2}\d{5,}\b"


def mask_account(account: str) -> str:
    """An account code for logs and messages: at most its last three characters (`…567`)."""
    return "…" + account[-3:] if account else "<none>"


class AccountMaskFilter(logging.Filter):
    """Rewrites account codes in a record's message to their masked form."""

    def __init__(self) -> None:
        super().__init__("")
        self._known: set[str] = set()
        self._pattern = re.compile(_ACCOUNT_LIKE)

    def remember(self, accounts: Iterable[str]) -> None:
        """Mask these codes too (managed accounts of a connection, whatever their shape)."""
        new = {a for a in accounts if a} - self._known
        if not new:
            return
        self._known |= new
        known = "|".join(re.escape(a) for a in sorted(self._known, key=len, reverse=True))
        self._pattern = re.compile(f"{known}|{_ACCOUNT_LIKE}")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's problem, not ours
            return True
        masked = self._pattern.sub(lambda m: mask_account(m.group(0)), message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class OfflineNoiseFilter(logging.Filter):
    """Demotes ib_insync's per-attempt connection-refused (and self-cancelled) lines to DEBUG."""

    _EXPECTED = CONNECT_FAILURE_LOG_PREFIXES

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and str(record.msg).startswith(self._EXPECTED):
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
        # Handlers check the (now lowered) level; the logger's own check has already passed.
        return record.levelno >= logging.getLogger(record.name).getEffectiveLevel()


IB_LOG_MASK = AccountMaskFilter()
_OFFLINE_NOISE = OfflineNoiseFilter()


def tame_ib_insync_logs() -> AccountMaskFilter:
    """Attach the shared filters to ib_insync's loggers (idempotent); returns the mask."""
    for name in IB_LOGGER_NAMES:
        target = logging.getLogger(name)
        if IB_LOG_MASK not in target.filters:
            target.addFilter(IB_LOG_MASK)
    client = logging.getLogger("ib_insync.client")
    if _OFFLINE_NOISE not in client.filters:
        client.addFilter(_OFFLINE_NOISE)
    return IB_LOG_MASK
