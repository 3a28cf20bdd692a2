"""`position-sync gateway` serves the protocol until Ctrl-C, then exits 0."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

from app.cli.commands import gateway
from app.cli.main import _common
from tests.sim.rawclient import RawClient

REPO = Path(__file__).resolve().parents[2]
# Only the gateway command, until it joins app.cli.commands.REGISTRY.
RUNNER = (
    "import argparse, sys\n"
    "from app.cli.main import _common\n"
    "from app.cli.commands import gateway\n"
    "parser = argparse.ArgumentParser()\n"
    "gateway.register(parser.add_subparsers(), _common)\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    gateway.register(parser.add_subparsers(), _common)
    return parser


def test_parses_port_and_scenario() -> None:
    args = _parser().parse_args(["gateway", "--port", "7500", "--scenario", "scale-1000"])
    assert (args.port, args.scenario, args.handler) == (7500, "scale-1000", gateway.run_gateway)
    assert _parser().parse_args(["gateway"]).scenario == "demo"


def test_bad_scenario_and_remote_host_are_usage_errors() -> None:
    assert gateway.run_gateway(_parser().parse_args(["gateway", "--scenario", "nope"])) == 2
    remote = _parser().parse_args(["gateway", "--host", "0.0.0.0", "--port", "0"])
    assert gateway.run_gateway(remote) == 2


def test_serves_until_interrupted(loop: asyncio.AbstractEventLoop) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "gateway", "--port", "0", "--scenario", "basic"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line

        async def handshake() -> list[str]:
            client = await RawClient.open(int(match.group(1)), client_id=1)
            frames = await client.ready()
            await client.close()
            return frames[0]

        assert loop.run_until_complete(asyncio.wait_for(handshake(), 10))[0] == "15"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
