"""The simulator in its own process, as TWS would be, scripted over a line-based control pipe.

The benchmark never shares a GIL with the simulator: `Gateway` starts `python -m
tests.bench.gateway SCENARIO`, reads the port from its first line, and sends one JSON command
per line on its stdin; each command is answered with one JSON line. Closing stdin stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from app.sim.runner import SimulatorThread
from app.sim.state import SimState

REPO = Path(__file__).resolve().parents[2]


class Gateway:
    """Handle on a simulator process: `port`, and a few scripted broker changes."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.gateway", scenario],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._read()["port"])

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process for {self.scenario} ended")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"simulator: {answer['error']}")
        return answer

    def command(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def holding(self, index: int) -> tuple[str, int, Decimal]:
        """(account, conId, quantity) of the `index`-th holding."""
        answer = self.command("holding", index=index)
        return answer["account"], int(answer["con_id"]), Decimal(answer["quantity"])

    def adjust_quantity(self, account: str, con_id: int, quantity: Decimal) -> None:
        """A quantity change without a fill, pushed to subscribers (a live position update)."""
        self.command("adjust", account=account, con_id=con_id, quantity=str(quantity))

    def move_prices(self, step: Decimal) -> int:
        """Every price moves by `step` (no pushes: the next full sync downloads them)."""
        return int(self.command("move_prices", step=str(step))["moved"])

    def close(self) -> None:
        """Stop the simulator process."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------- the child process
def _move_prices(step: Decimal) -> Any:
    def move(state: SimState) -> int:
        for con_id, price in state.prices.items():
            if price is not None and price.is_finite():
                state.prices[con_id] = price + step
        return len(state.prices)

    return move


def _serve(scenario: str) -> None:
    with SimulatorThread(scenario, run_driver=False) as sim:
        print(json.dumps({"port": sim.port}), flush=True)
        holdings: list[tuple[str, int, Decimal]] | None = None
        for line in sys.stdin:
            request = json.loads(line)
            op = request.pop("op")
            try:
                if op == "holding":
                    if holdings is None:
                        holdings = sorted(
                            (a, c, q) for a, c, q, _ in sim.positions()
                        )  # fmt: skip
                    account, con_id, quantity = holdings[request["index"] % len(holdings)]
                    answer: dict[str, Any] = {
                        "account": account, "con_id": con_id, "quantity": str(quantity)
                    }  # fmt: skip
                elif op == "adjust":
                    holding = sim.adjust_quantity(
                        request["account"], request["con_id"], Decimal(request["quantity"])
                    )
                    answer = {"quantity": str(holding.quantity)}
                elif op == "move_prices":
                    answer = {"moved": sim.call(_move_prices(Decimal(request["step"])))}
                else:
                    answer = {"error": f"unknown command {op!r}"}
            except Exception as exc:  # answered, so the benchmark fails with the reason
                answer = {"error": repr(exc)}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1])
