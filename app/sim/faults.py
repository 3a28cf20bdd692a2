"""Fault switches: slow answers, missing end markers, drops mid-snapshot.

A request *kind* is the request's name without `REQ_`, lower case: `positions`,
`account_updates`, `account_updates_multi`, `executions`, `account_summary`, `open_orders`,
`all_open_orders`, `completed_orders`, `pnl`, `pnl_single`, `ids`, `current_time`,
`managed_accts`, `contract_details` (withheld: contractData without its contractDataEnd, so
the client's request never completes and times out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.sim.requests import request_name


def request_kind(msg_id: int) -> str:
    """The kind name used by Faults for a request id (`positions` for 61)."""
    return request_name(msg_id).removeprefix("REQ_").lower()


@dataclass(slots=True)
class Faults:
    """What to break. Change fields through GatewaySimulator.set_faults from other threads."""

    # Seconds to wait before answering a request of this kind.
    delays: dict[str, float] = field(default_factory=dict)
    # Kinds whose end marker is never sent (positions → no 62, executions → no 55, …).
    withhold_end: set[str] = field(default_factory=set)
    # Close the connection right after the N-th row of a positions snapshot (1-based).
    drop_after_position_rows: int | None = None
    # Apply drop_after_position_rows to the first snapshot only (then clear it).
    drop_once: bool = True
    # Seconds after a fill during which position rows (reqPositions answers and pushes) and
    # portfolio rows still show the holding as it was before the fill, while execDetails and
    # reqExecutions already have the fill. TWS answers reqPositions and reqExecutions from
    # separate streams, so a client that asks for both around a fill can get one from before
    # it and one from after (issue 15, situation 9: a sync got the executions answer after a
    # fill but position rows from before it).
    position_lag: float = 0.0

    def delay_for(self, kind: str) -> float:
        return max(0.0, self.delays.get(kind, 0.0))
