"""Fault switches: slow answers, missing end markers, drops mid-snapshot.

Broker-side events that are no fault of the wire — a split, a new-conId reverse split
(GatewaySimulator.convert; the `new-conid-reverse-split` scenario in app.sim.scenarios) — are
methods of the simulator, not switches here.

A request *kind* is the request's name without `REQ_`, lower case: `positions`,
`account_updates`, `account_updates_multi`, `executions`, `account_summary`, `open_orders`,
`all_open_orders`, `completed_orders`, `pnl`, `pnl_single`, `ids`, `current_time`,
`managed_accts`, `positions_multi`, `contract_details` (withheld: contractData without its
contractDataEnd, so the client's request never completes and times out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.sim.requests import request_name

POSITIONS_MAX_ACCOUNTS = 50
"""Above this many accounts TWS does not serve reqPositions (tws-api/positions.html)."""

POSITIONS_REFUSED_CODE = 321
POSITIONS_REFUSED_TEXT = (
    "Error validating request.-'reqPositions' : cause - not available for this account "
    "structure; use reqPositionsMulti"
)

ACCOUNT_UPDATES_REFUSED_CODE = 2101
ACCOUNT_UPDATES_REFUSED_TEXT = (
    "Unable to subscribe to account as the following clients are subscribed to a different account."
)


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
    # TWS serves reqAccountUpdates for one account at a time across all API clients: "A
    # limitation of the function IBApi.EClient.reqAccountUpdates is that it can only be used
    # with a single account at a time" (interactivebrokers.github.io/tws-api/positions.html);
    # a request for another account while a client holds one is answered with warning 2101
    # "Unable to subscribe to account as the following clients are subscribed to a different
    # account" and no data (erdewit/ib_insync/issues/197). With `exclusive_account_updates`
    # the simulator applies that rule between its clients (off by default: tests written before
    # it subscribe several clients to different accounts); `account_updates_holder` is an
    # API client outside the simulator (a trading bot) holding that account's subscription.
    exclusive_account_updates: bool = False
    account_updates_holder: str | None = None
    # reqPositions "is not available in Introducing Broker or Financial Advisor master accounts
    # that have very large numbers of subaccounts (> 50) ... Also not available with IBroker
    # accounts configured for on-demand account lookup" (tws-api/positions.html). The simulator
    # refuses it for logins with more than 50 accounts, or always with `refuse_positions`.
    # IB does not document the code of that refusal; we answer with 321 ("Error validating
    # request"), TWS's code for refused requests (as for read-only), reqId -1 (reqPositions
    # carries no request id). An assumption, not a documented answer.
    refuse_positions: bool = False
    # TWS 10.30.1i: reqExecutions answered with nothing at all — no execDetails rows, no
    # execDetailsEnd — while executions of trades filled after the connect still arrive live
    # (github.com/ib-api-reloaded/ib_async/issues/54; ib_insync's connect then times out:
    # ib-api-reloaded/ib_async/issues/82, erdewit/ib_insync/issues/638). `withhold_end=
    # {"executions"}` is the milder variant: the rows, but no end.
    silent_executions: bool = False

    def refuses_positions(self, accounts: int) -> bool:
        """Whether reqPositions is refused for a login with this many accounts."""
        return self.refuse_positions or accounts > POSITIONS_MAX_ACCOUNTS

    def delay_for(self, kind: str) -> float:
        return max(0.0, self.delays.get(kind, 0.0))
