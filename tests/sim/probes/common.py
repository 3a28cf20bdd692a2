"""Canonical forms shared by the client probes and the tests that compare their output.

Every client sees the same wire; these helpers turn each library's objects into plain JSON so
the three outputs (and the simulator's own state) compare with ==.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

UNSET = sys.float_info.max
NOTICE_CODES = {2100, 2104, 2106, 2158}


def qty(value: Any) -> str:
    """A quantity as exact decimal text: float 0.3 and Decimal('0.3') both give '0.3'."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def num(value: float) -> float | None:
    """A double; IB's unset (and the Python clients' 0.0 for it) become None where noted."""
    return None if value >= UNSET else float(value)


def realized(value: float) -> float | None:
    """A commission report's realizedPNL: unset, or 0.0 as the Python clients turn unset."""
    return None if value == 0.0 or value >= UNSET else float(value)


def emit(kind: str, payload: Any) -> None:
    print(json.dumps({"kind": kind, "data": payload}, sort_keys=True), flush=True)
