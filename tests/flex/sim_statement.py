"""An Activity Flex statement written from the simulator's own executions.

The simulator (app.sim) is TWS; IB's statement of the same account lists the same executions
with the same execIds (ibExecID = the API's execId). This helper plays IB's reporting side in
tests: it turns the simulator's Execution records into Trade rows in IB's layout
(tests.flex.builder), so an import merges them with what the live connection delivered. It
lives with the tests rather than in app.sim, which other work owns; it reads the simulator's
public state only.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.values import Contract, Fill, Side
from app.sim.model import Execution
from tests.flex.builder import StatementXml


def fill_of(execution: Execution) -> Fill:
    """The execution as the fill IB's statement records (its time in whole seconds)."""
    c = execution.contract
    contract = Contract(
        con_id=c.con_id,
        symbol=c.symbol,
        sec_type=c.sec_type,
        currency=c.currency,
        exchange=c.primary_exchange or c.exchange,
        local_symbol=c.local_symbol or c.symbol,
        multiplier=c.factor,
        expiry=c.expiry,
        strike=c.strike or None,
        right=c.right,
    )
    return Fill(
        exec_id=execution.exec_id,
        account=execution.account,
        contract=contract,
        side=Side(execution.side),
        shares=execution.shares,
        price=execution.price,
        time=execution.time.replace(microsecond=0),
        perm_id=execution.perm_id,
        order_ref=execution.order_ref,
        commission=execution.commission,
        commission_currency=execution.commission_currency,
    )


def statement_of(account: str, executions: Iterable[Execution]) -> StatementXml:
    """One account's statement holding these executions, oldest first."""
    statement = StatementXml(account)
    for execution in sorted(executions, key=lambda e: (e.time, e.exec_id)):
        if execution.account == account:
            statement.trade(fill_of(execution))
    return statement
