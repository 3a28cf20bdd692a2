"""Every message kind the simulator sends decodes with ibapi's own decoder at server 176.

A raw client records everything the simulator sends in a session that exercises every
request and push; each frame then goes through ibapi's Decoder field by field: the right
callback must fire, nothing may be left over or missing, and ibapi may log no complaint.
ib_insync's decoder gets the same frames and must not fail on any of them.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest
from ibapi.decoder import Decoder
from ibapi.wrapper import EWrapper

from app.sim.messages import Out
from app.sim.runner import SimulatorThread
from tests.sim.rawclient import Frame, RawClient

CALLBACK = {
    Out.ORDER_STATUS: "orderStatus",
    Out.ERROR: "error",
    Out.OPEN_ORDER: "openOrder",
    Out.ACCOUNT_VALUE: "updateAccountValue",
    Out.PORTFOLIO_VALUE: "updatePortfolio",
    Out.ACCOUNT_TIME: "updateAccountTime",
    Out.NEXT_VALID_ID: "nextValidId",
    Out.CONTRACT_DATA: "contractDetails",
    Out.CONTRACT_DATA_END: "contractDetailsEnd",
    Out.EXEC_DETAILS: "execDetails",
    Out.MANAGED_ACCOUNTS: "managedAccounts",
    Out.CURRENT_TIME: "currentTime",
    Out.OPEN_ORDER_END: "openOrderEnd",
    Out.ACCOUNT_DOWNLOAD_END: "accountDownloadEnd",
    Out.EXEC_DETAILS_END: "execDetailsEnd",
    Out.COMMISSION_REPORT: "commissionAndFeesReport",
    Out.POSITION: "position",
    Out.POSITION_END: "positionEnd",
    Out.ACCOUNT_SUMMARY: "accountSummary",
    Out.ACCOUNT_SUMMARY_END: "accountSummaryEnd",
    Out.POSITION_MULTI: "positionMulti",
    Out.POSITION_MULTI_END: "positionMultiEnd",
    Out.ACCOUNT_UPDATE_MULTI: "accountUpdateMulti",
    Out.ACCOUNT_UPDATE_MULTI_END: "accountUpdateMultiEnd",
    Out.PNL: "pnl",
    Out.PNL_SINGLE: "pnlSingle",
    Out.COMPLETED_ORDERS_END: "completedOrdersEnd",
}
ACCOUNT = "DU1111111"


class Recorder(EWrapper):
    """Records every callback ibapi's decoder makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        for name in dir(EWrapper):
            if not name.startswith("_") and callable(getattr(EWrapper, name)):
                setattr(self, name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


async def _session(port: int, sim: Any) -> tuple[Frame | None, list[Frame]]:
    client = await RawClient.open(port, client_id=21)
    frames = await client.ready()  # managedAccounts, nextValidId
    for request in (
        ("61", "1"),
        ("6", "2", "1", ACCOUNT),
        ("76", "1", "5", ACCOUNT, "", "0"),
        ("74", "1", "11", ACCOUNT, ""),
        ("62", "1", "6", "All", "NetLiquidation,AccountType,$LEDGER:ALL"),
        ("7", "3", "8", "0", "", "", "", "", "", ""),
        ("5", "1"),
        ("99", "0"),
        ("8", "1", "1"),
        ("49", "1"),
        ("17", "1"),
        ("92", "9", ACCOUNT, ""),
        ("94", "10", ACCOUNT, "", "265598"),
        # reqContractDetails by conId, as ib_insync 0.9.86 sends it at 176 (issuerId last).
        ("9", "8", "11", "265598", "", "", "", "0.0", "", "", "", "", "", "", "", "1", "", "", ""),
    ):
        client.send(*request)
    got, _ = await client.drain(quiet=0.3)
    frames += got
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: sim.fill(ACCOUNT, 265598, Decimal("-7.5"), Decimal("190.25"))
    )
    await asyncio.get_running_loop().run_in_executor(None, lambda: sim.push_error(1100))
    got, _ = await client.drain(quiet=0.3)
    frames += got
    await client.close()
    return client.handshake, frames


@pytest.fixture
def frames(basic: SimulatorThread, loop: asyncio.AbstractEventLoop) -> list[Frame]:
    handshake, got = loop.run_until_complete(_session(basic.port, basic.sim))
    assert handshake is not None and len(handshake) == 2 and handshake[0] == "176"
    return got


def test_the_session_covers_every_message_kind(frames: list[Frame]) -> None:
    assert {int(f[0]) for f in frames} == set(Out)


def test_ibapi_decodes_every_frame_exactly(
    frames: list[Frame], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ibapi")
    wrapper = Recorder()
    decoder = Decoder(wrapper, 176)
    for frame in frames:
        msg_id = int(frame[0])
        fields = tuple(f.encode() for f in frame[1:])
        info = decoder.msgId2handleInfo[msg_id]
        wrapper.calls.clear()
        if info.wrapperMeth is not None:
            # Signature messages: ibapi insists on the exact field count.
            decoder.interpretWithSignature(fields, info)
        else:
            rest = iter(fields)
            info.processMeth(decoder, rest)
            assert next(rest, None) is None, f"unread fields in {frame[:3]}…"
        names = [name for name, _ in wrapper.calls]
        assert names[-1:] == [CALLBACK[Out(msg_id)]], f"{frame[:4]}… gave {names}"
        complaints = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not complaints, complaints


def test_ibapi_reads_the_values_exactly(frames: list[Frame]) -> None:
    wrapper = Recorder()
    decoder = Decoder(wrapper, 176)
    for frame in frames:
        decoder.interpret(tuple(f.encode() for f in frame[1:]), int(frame[0]))
    calls: dict[str, list[tuple[Any, ...]]] = {}
    for name, args in wrapper.calls:
        calls.setdefault(name, []).append(args)
    msft = [args for args in calls["position"] if args[1].conId == 272093]
    assert msft[0][2] == Decimal("0.3")  # fractional quantity, exact
    live = [args for args in calls["execDetails"] if args[0] == -1]
    assert len(live) == 1
    assert live[0][2].shares == Decimal("7.5") and live[0][2].side == "SLD"
    assert live[0][2].time.endswith(" US/Eastern")
    orders = [args for args in calls["openOrder"]]
    assert {args[2].permId for args in orders} == {live[0][2].permId}
    assert [args[3].status for args in orders] == ["Submitted", "Filled"]
    (details,) = calls["contractDetails"]
    assert details[0] == 11 and details[1].contract.conId == 265598
    assert details[1].priceMagnifier == 1 and details[1].contract.symbol == "AAPL"
    assert calls["contractDetailsEnd"] == [(11,)]
    errors = [args[2] for args in calls["error"]]
    assert errors == [2104, 2106, 2158, 1100]


def test_ib_insync_decodes_every_frame(
    frames: list[Frame], caplog: pytest.LogCaptureFixture, loop: asyncio.AbstractEventLoop
) -> None:
    from ib_insync import IB
    from ib_insync.decoder import Decoder as InsyncDecoder

    ib = IB()
    decoder = InsyncDecoder(ib.wrapper, 176)
    caplog.set_level(logging.ERROR)
    details = ib.wrapper.startReq(11)  # the reqContractDetails the raw session sent
    for frame in frames:
        decoder.interpret(frame)
    (answer,) = details.result()
    assert answer.contract.conId == 265598 and answer.priceMagnifier == 1
    failures = [r.getMessage() for r in caplog.records if "Error handling" in r.getMessage()]
    assert not failures
    assert any(p.position == 0.3 for p in ib.wrapper.positions[ACCOUNT].values())
