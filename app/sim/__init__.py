"""Embedded TWS-protocol gateway simulator (asyncio sockets, stdlib only, no ib_insync).

Start it in a background thread and script it from anywhere:

    from app.sim import SimulatorThread
    with SimulatorThread("basic") as sim:          # 127.0.0.1, a free port
        ib.connect("127.0.0.1", sim.port, clientId=1)
        sim.fill("DU1111111", 265598, 10, "190.5")  # thread-safe control methods
        sim.restart(down_for=2.0)

Inside a running loop use GatewaySimulator directly (`await sim.start()`). The app's `--demo`
uses start_demo(); `position-sync gateway` runs it alone.
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
