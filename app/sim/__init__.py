"""Embedded TWS-protocol gateway simulator (asyncio sockets, stdlib only, no ib_insync).

Start it in a background thread and script it from anywhere:

    from app.sim import SimulatorThread
    with SimulatorThread("basic") as sim:          # 127.0.0.1, a free port
        ib.connect("127.0.0.1", sim.port, clientId=1)
        sim.fill("DU1111111", 265598, 10, "190.5")  # thread-safe control methods
        sim.restart(down_for=2.0)

Inside a running loop use GatewaySimulator directly (`await sim.start()`). The app's `--demo`
uses start_demo(); `position-sync gateway` runs it alone.

Controls for the situations where the ledger cannot see everything (GatewaySimulator methods,
thread-safe; each cites in its docstring the IB source it follows):

- `fill(account, contract|conId, shares, price, *, commission=None, order_ref="",
  client_id=0, order_id=0, withhold_commission=False)` → Execution. client_id/order_id 0: an
  order entered by hand in TWS. withhold_commission: execDetails now, commissionReport later.
- `release_commission(exec_id, commission=None)`: sends the withheld commissionReport live (to
  the clients that see the execution); later reqExecutions answers include it. A different
  `commission` re-books the fill (avgCost and realized P&L include commissions).
- `correct_fill(exec_id, *, price=None, shares=None, commission=None,
  withhold_commission=False)` → the corrected Execution (`….01` → `….02`), replacing the original
  in reqExecutions answers; the holding, cash and the realized P&L of it and every later fill of
  that (account, conId) are re-booked; position/portfolio/account rows are pushed.
- `new_day()` → [(account, conId)] dropped: positions closed today (reported with quantity 0
  and avgCost 0 until now) disappear, portfolio realizedPNL resets, and executions older than
  `set_execution_days(n)` days (1–7, default 1) leave reqExecutions answers. Nothing is pushed.
- `expire(account, conId, *, zero_row=False)`: an OPT/FOP/WAR whose expiry date is past
  expires worthless — no execution, no cash, no push; the next snapshot lacks it (zero_row:
  reports it with quantity 0 until new_day()). ValueError for other types or live expiries.
- `exercise_option(account, conId, underlying contract|conId, quantity=None)`: exercise
  (long) or assignment (short) with no execution: the option shrinks by quantity (default all),
  the underlying moves by ± multiplier × quantity at the strike, cash by the strike amount.
- `set_exchange_rate(currency, usd_per_unit)`, `set_base_currency(account, currency)`: account
  updates carry `ExchangeRate` per held currency (base-currency units per unit, the base
  itself 1.00) and `ExchangeRate 1.00 BASE`; base currency is per account (add_account).
- Who sees executions: `GatewaySimulator(..., broadcast_executions=True, master_client_id=None)`
  (also SimulatorThread/start_sim keywords), `set_broadcast_executions(bool)`,
  `set_master_client_id(id|None)`. With broadcast off (TWS's rule), execDetails,
  commissionReport and reqExecutions answers reach only the placing client id, client 0 and the
  master; position and account rows still reach everyone. Broadcast is on by default because
  tests written before the rule sync manual fills as non-zero client ids.
- What a real TWS does not serve (issue 16; each Faults field cites IB): `set_faults(
  exclusive_account_updates=True, account_updates_holder=account)` — one account-updates
  subscription across clients, another account's request answered with 2101 and no data;
  `set_faults(refuse_positions=True)` (and any login of more than 50 accounts) — reqPositions
  refused, reqPositionsMulti served; `set_faults(silent_executions=True)` — TWS 10.30's
  reqExecutions answered with nothing (live executions still pushed); `break_server_link()` /
  `restore_server_link()` — 2110 without 1100, then the farms' OK notices.
- `set_faults(position_lag=seconds)`: for that long after a fill, position rows (reqPositions
  answers and pushes) and portfolio rows show the holding from before it (a new holding: no row)
  while execDetails and reqExecutions already have the fill; then the rows are pushed.
"""

from __future__ import annotations

from app.sim.faults import Faults
from app.sim.model import Account, Contract, Execution, Holding
from app.sim.runner import SimulatorThread, start_demo
from app.sim.scenarios import Scenario, get_scenario, scenario_names
from app.sim.server import GatewaySimulator, InboundRecord
from app.sim.state import SimState

__all__ = [
    "Account",
    "Contract",
    "Execution",
    "Faults",
    "GatewaySimulator",
    "Holding",
    "InboundRecord",
    "Scenario",
    "SimState",
    "SimulatorThread",
    "get_scenario",
    "scenario_names",
    "start_demo",
]
