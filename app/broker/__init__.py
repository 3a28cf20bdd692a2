"""IB adapter over ib_insync: the only package that imports ib_insync.

`IbBroker` (adapter.py) implements app.sync's BrokerPort: read-only connection supervision,
complete snapshots and live events. The rest are its parts: `session` (one connection),
`live` (what that connection reported), `convert` (IB rows → domain values), `guard` (no order
message leaves), `supervisor` (reconnect loop), `tasks`, `logs`, and `ib_internals`: every use of
ib_insync's internals, fenced and checked by tests/broker/test_ib_internals_contract.py.
"""

from __future__ import annotations

from app.broker.adapter import IbBroker
from app.broker.guard import OrderMessageBlockedError

__all__ = ["IbBroker", "OrderMessageBlockedError"]
