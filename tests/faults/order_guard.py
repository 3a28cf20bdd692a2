"""DESIGN rule 11 across the whole suite: no simulator ever receives an order message.

Loaded from the root conftest (`pytest_plugins`). Every GatewaySimulator built during a test is
remembered; after the test (when every fixture has stopped its simulators) its inbound record
must hold no placeOrder (3), cancelOrder (4), exerciseOptions (21) or reqGlobalCancel (58).

A test that sends order messages on purpose with its own raw client (to prove the simulator
records and refuses them) says so with `@pytest.mark.sends_order_messages(client_ids=[N])`;
only those client ids' messages are excluded, and every other client of that test is checked.
Simulators running in a subprocess (`position-sync gateway`) are outside this check.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.sim.requests import ORDER_MESSAGES
from app.sim.server import GatewaySimulator

MARKER = "sends_order_messages"


@dataclass
class Tally:
    """What the check saw over the session (printed in the terminal summary)."""

    simulators: int = 0
    messages: int = 0
    order_messages: int = 0
    excluded: int = 0


TALLY = Tally()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(client_ids): the test's own raw client sends order messages on purpose; "
        "only those client ids are exempt from the no-order-message check",
    )


@pytest.fixture(autouse=True)
def _no_order_messages(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Checks every simulator the test built, after all other fixtures have stopped them."""
    built: list[GatewaySimulator] = []
    original = GatewaySimulator.__init__

    @functools.wraps(original)
    def remembering_init(self: GatewaySimulator, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(GatewaySimulator, "__init__", remembering_init)
    yield
    marker = request.node.get_closest_marker(MARKER)
    exempt = frozenset(marker.kwargs.get("client_ids", ())) if marker is not None else frozenset()
    offending: list[tuple[int, int | None, int]] = []
    for sim in built:
        records = list(sim.inbound)  # the simulator is stopped; its record is final
        TALLY.simulators += 1
        TALLY.messages += len(records)
        for record in records:
            if record.msg_id not in ORDER_MESSAGES:
                continue
            if record.client_id in exempt:
                TALLY.excluded += 1
                continue
            TALLY.order_messages += 1
            offending.append((record.conn_id, record.client_id, record.msg_id))
    assert not offending, f"order messages reached the simulator (conn, client, id): {offending}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.simulators:
        terminalreporter.write_line(
            f"read-only check: {TALLY.simulators} simulators, {TALLY.messages} client messages, "
            f"{TALLY.order_messages} order messages from the app "
            f"({TALLY.excluded} sent on purpose by marked raw-client tests)"
        )
