"""Benchmark: how fast 20,000 positions reach ib_insync from the simulator.

    python -m tests.sim.bench [--positions N] [--rounds R] [--in-process]

The simulator runs in its own process by default (as TWS would); --in-process runs it in a
thread of this process instead, sharing the GIL with ib_insync. Prints one line per figure.
Not a test: timings depend on the machine (the budget is on the 2-core box, DESIGN.md).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ib_insync import IB

from app.sim.scenarios import build_scale

REPO = Path(__file__).resolve().parents[2]
SERVER = (
    "import sys, threading\n"
    "from app.sim.runner import SimulatorThread\n"
    "thread = SimulatorThread(sys.argv[1]).start()\n"
    "print(thread.port, flush=True)\n"
    "sys.stdin.read()\n"
    "thread.stop()\n"
)


@contextmanager
def gateway(scenario: str, in_process: bool) -> Iterator[int]:
    if in_process:
        from app.sim.runner import SimulatorThread

        with SimulatorThread(scenario) as sim:
            yield sim.port
        return
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, scenario],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not re.fullmatch(r"\d+\n", line):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield int(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


async def measure(port: int, count: int, rounds: int) -> dict[str, float | list[float]]:
    ib = IB()
    started = time.perf_counter()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=60, readonly=True)
    connect = time.perf_counter() - started
    if len(ib.positions()) != count:
        raise RuntimeError(f"expected {count} positions, got {len(ib.positions())}")
    figures: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        positions = await ib.reqPositionsAsync()
        figures.append(time.perf_counter() - started)
        if len(positions) != count:
            raise RuntimeError(f"expected {count} positions, got {len(positions)}")
    account = ib.managedAccounts()[0]
    started = time.perf_counter()
    await ib.reqAccountUpdatesAsync(account)
    portfolio = time.perf_counter() - started
    ib.disconnect()
    return {"connect": connect, "positions": figures, "portfolio": portfolio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    state = build_scale(args.positions)
    print(f"build scale-{args.positions}: {time.perf_counter() - started:.3f} s "
          f"({len(state.accounts)} accounts)")  # fmt: skip
    where = "in-process thread" if args.in_process else "separate process"
    with gateway(f"scale-{args.positions}", args.in_process) as port:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        result = loop.run_until_complete(measure(port, args.positions, args.rounds))
        loop.close()
    rounds = result["positions"]
    assert isinstance(rounds, list)
    print(f"simulator: {where}")
    print(f"ib_insync connectAsync (positions + account data + executions): "
          f"{result['connect']:.3f} s")  # fmt: skip
    print(f"reqPositions → positionEnd, {args.positions:,} positions in ib_insync: "
          f"best {min(rounds):.3f} s, median {statistics.median(rounds):.3f} s, "
          f"worst {max(rounds):.3f} s over {len(rounds)} rounds")  # fmt: skip
    print(f"reqAccountUpdates one account (portfolio): {result['portfolio']:.3f} s")


if __name__ == "__main__":
    main()
