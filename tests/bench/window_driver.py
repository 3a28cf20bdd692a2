"""Runs in a child process: the real window (`position-sync gui`) with probes attached.

    python -m tests.bench.window_driver cold REPORT T0 EXPECT -- GUI-ARGS…
    python -m tests.bench.window_driver live REPORT T0 EXPECT ROUNDS UPDATES -- GUI-ARGS…

Both call `app.cli.main.main(["gui", …])`, the window's own entry point, after swapping in
subclasses of MainWindow / WindowController that only observe. `T0` is the parent's wall clock
(time.time()) just before it started this process, so a cold start includes Python's start-up.

- cold: the first paint of the open-positions table holding EXPECT rows, offline; then quits.
- live: a simulator (scale-EXPECT, in its own process, started here) behind the window. A 1 ms
  heartbeat timer on the Qt loop records every gap. Measured: the longest gap from the start of
  each full sync until the window has taken in its result (the first sync of an empty ledger,
  then ROUNDS syncs after every price moved); then UPDATES live quantity pushes, each from the
  service's debounce firing to the open-positions model holding the new quantity.

Both write peak resident memory (VmHWM) too; live also the resident memory after each sync and
how long one whole-heap garbage collection takes at the end. The report is JSON at REPORT.

Diagnostics for a missed stall budget (environment): BENCH_STALL_TRACE=1 prints every thread's
stack whenever the Qt loop has been stalled for 30 ms, and each garbage collection over 5 ms;
BENCH_SLOW_CALLBACKS=0.02 has asyncio name each callback slower than that (debug mode: slower);
BENCH_SLOW_STEPS=0.025 names them without debug mode, with the loop's stall when each ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any


def _memory_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM: peak, VmRSS: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return _memory_mb("VmHWM")


def _rss_mb() -> float:
    return _memory_mb("VmRSS")


def main(argv: list[str]) -> int:
    split = argv.index("--")
    mode, report, t0, expect, *rest = argv[:split]
    gui_args = argv[split + 1 :]
    out: dict[str, Any] = {"mode": mode}

    from app.cli.collector import claim_process, collector_paused

    claim_process()  # a process started for the window, as `position-sync gui` is

    # Imported here (to swap classes in) as `position-sync gui` imports them: with the collector
    # paused (app.cli.collector), so the cold start's figure is the user's.
    # In its order too: the modules without Qt before PySide6 (app.cli.commands.gui says why).
    with collector_paused():
        from app.cli.commands.gui import import_window_modules
        from app.cli.main import main as cli_main

        import_window_modules()
        from PySide6.QtCore import QEvent, QObject, QTimer

        import app.ui.app as ui_app

    base_window = ui_app.MainWindow
    base_controller = ui_app.WindowController
    expected = int(expect)

    class PaintProbe(QObject):
        """The first paint of the cache table with every cached row: the cold start's end."""

        def __init__(self, window: Any) -> None:
            super().__init__(window)
            self.window = window

        def eventFilter(self, watched: Any, event: Any) -> bool:
            if (
                event.type() == QEvent.Type.Paint
                and "painted" not in out
                and self.window.cache_model.rowCount() >= expected
            ):
                QTimer.singleShot(0, self.painted)  # runs once this paint has finished
                out["painted"] = -1.0
            return False

        def painted(self) -> None:
            out["painted"] = time.time() - float(t0)
            out["painted_rss_mb"] = _peak_rss_mb()
            if mode == "cold":
                self.window.close()

    class ProbedWindow(base_window):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.paint_probe = PaintProbe(self)
            self.cache_table.viewport().installEventFilter(self.paint_probe)
            QTimer.singleShot(300_000, self.close)  # never hang the benchmark

    gateway = None
    if mode == "live":
        from tests.bench.gateway import Gateway

        gateway = Gateway(f"scale-{expected}")
        gui_args += ["--port", str(gateway.port)]

    class ProbedController(base_controller):  # type: ignore[misc, valid-type]
        async def start(self) -> None:
            await super().start()
            if gateway is not None:
                self.tasks.spawn(_live(self, gateway, out, expected, *rest), "benchmark")

    ui_app.MainWindow = ProbedWindow
    ui_app.WindowController = ProbedController
    try:
        code = cli_main(["gui", *gui_args])
    finally:
        if gateway is not None:
            gateway.close()
    out["exit_code"] = code
    out["peak_rss_mb"] = _peak_rss_mb()
    Path(report).write_text(json.dumps(out))
    return code


class Heartbeat:
    """A 1 ms timer on the Qt loop; every gap between its ticks, with when it ended."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.gaps: list[tuple[float, float]] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(1)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def trace_stalls(self, threshold: float = 0.03) -> None:
        """Diagnostics (BENCH_STALL_TRACE=1): the GUI thread's stack whenever it is stalled."""
        import threading
        import traceback

        main_id = threading.get_ident()
        main_native = threading.get_native_id()

        def watch() -> None:
            while self._timer is not None:
                time.sleep(0.005)
                stalled = time.perf_counter() - self._last
                if stalled > threshold:
                    frames = sys._current_frames()
                    names = {t.ident: t.name for t in threading.enumerate()}
                    print(f"--- stalled {stalled * 1000:.0f} ms", flush=True)
                    # Each thread's scheduler state (R: on a CPU, S: waiting, e.g. for the GIL)
                    # and CPU ticks: tells the GUI thread's own work from waiting on another.
                    for task in sorted(Path("/proc/self/task").iterdir()):
                        try:
                            stat = (task / "stat").read_text()
                        except OSError:
                            continue
                        fields = stat[stat.rindex(")") + 2 :].split()
                        name = "GUI" if int(task.name) == main_native else stat.split("(")[1][:15]
                        print(f"  thread {name} {fields[0]} cpu {fields[11]}+{fields[12]}")
                    for ident, frame in frames.items():
                        if ident == threading.get_ident():
                            continue
                        name = "GUI" if ident == main_id else names.get(ident, "?")
                        stack = "".join(traceback.format_stack(frame, limit=6))
                        print(f"[{name}]\n{stack}", flush=True)

        threading.Thread(target=watch, daemon=True).start()
        import gc

        began: list[float] = []

        def collected(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                began[:] = [time.perf_counter()]
            elif began and time.perf_counter() - began[0] > 0.005:
                took = (time.perf_counter() - began[0]) * 1000
                print(f"--- gc generation {info['generation']}: {took:.0f} ms", flush=True)

        gc.callbacks.append(collected)

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = now - self._last
        self._last = now
        if gap > 0.004:
            self.gaps.append((now, gap))

    def longest(self, start: float, end: float) -> float:
        """The longest gap that overlaps [start, end]."""
        return max((gap for at, gap in self.gaps if at >= start and at - gap <= end), default=0.0)

    def stop(self) -> None:
        self._timer.stop()


def _name_slow_steps(heartbeat: Heartbeat, threshold: float) -> None:
    """Diagnostics (BENCH_SLOW_STEPS=0.025): print each asyncio callback (a task's step, a
    socket read) that ran longer than `threshold` seconds, and the Qt loop's stall when it
    ended. Unlike BENCH_SLOW_CALLBACKS it leaves asyncio's debug mode (which slows every
    step) off."""
    import asyncio.events

    run = asyncio.events.Handle._run

    def timed(handle: Any) -> None:
        began = time.perf_counter()
        run(handle)
        took = time.perf_counter() - began
        if took > threshold:
            callback = handle._callback
            coro = getattr(getattr(callback, "__self__", None), "get_coro", lambda: None)()
            what = coro.cr_code.co_qualname if coro is not None else repr(callback)[:80]
            line = f"@{coro.cr_frame.f_lineno}" if coro is not None and coro.cr_frame else ""
            stalled = time.perf_counter() - heartbeat._last
            print(f"--- step {took * 1000:.0f} ms (loop stalled {stalled * 1000:.0f} ms): "
                  f"{what}{line}", flush=True)  # fmt: skip

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


async def _settled(controller: Any) -> None:
    """Until the window has taken in the last result (reloads, the broker view)."""
    deadline = time.perf_counter() + 120.0
    quiet = 0
    while quiet < 3:  # three polls in a row with nothing pending
        await asyncio.sleep(0.02)
        busy = (
            controller.state.running
            or controller.tasks._tasks - {asyncio.current_task()}
            or controller.broker_feed.pending
        )
        quiet = 0 if busy else quiet + 1
        if time.perf_counter() > deadline:
            raise TimeoutError("the window never settled")


async def _live(
    controller: Any, gateway: Any, out: dict[str, Any], size: int, rounds: str, updates: str
) -> None:
    from app.domain.values import SyncTrigger

    heartbeat = Heartbeat()
    if os.environ.get("BENCH_STALL_TRACE"):
        heartbeat.trace_stalls()
    if os.environ.get("BENCH_SLOW_STEPS"):
        _name_slow_steps(heartbeat, float(os.environ["BENCH_SLOW_STEPS"]))
    if os.environ.get("BENCH_SLOW_CALLBACKS"):  # diagnostics: asyncio names slow callbacks
        import logging

        logging.getLogger("asyncio").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = float(os.environ["BENCH_SLOW_CALLBACKS"])
    service = controller.runtime.service
    started: list[float] = []
    results: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
    service.on_run_started(lambda trigger: started.append(time.perf_counter()))
    service.on_result(lambda result: results.put_nowait((time.perf_counter(), result)))
    try:
        stalls: list[float] = []
        # The startup sync of an empty ledger: every position opens.
        _, first = await asyncio.wait_for(results.get(), 300)
        if not first.ok or first.opened != size:
            raise RuntimeError(f"startup sync: {first.summary()}")
        await _settled(controller)
        stalls.append(heartbeat.longest(started[0], time.perf_counter()))
        for number in range(int(rounds)):
            await asyncio.to_thread(gateway.move_prices, Decimal("0.01") * (number + 1))
            started.clear()
            result = await service.sync_positions(SyncTrigger.MANUAL)
            if not result.ok:
                raise RuntimeError(f"full sync: {result.summary()}")
            await _settled(controller)
            stalls.append(heartbeat.longest(started[0], time.perf_counter()))
            out.setdefault("rss_after_sync_mb", []).append(round(_rss_mb()))
            out.setdefault("none_refs", []).append(sys.getrefcount(None))
        out["stalls"] = stalls
        if os.environ.get("BENCH_STALL_TRACE"):  # diagnostics: when the long gaps were
            origin = heartbeat.gaps[0][0] if heartbeat.gaps else 0.0
            out["gaps"] = [(round(at - origin, 3), round(gap, 3)) for at, gap in heartbeat.gaps
                           if gap > 0.02]  # fmt: skip
        out["shown"] = await _updates(controller, gateway, int(updates))
        # Python's whole-heap collection pauses every thread; it runs rarely (the window's
        # thresholds, app.ui.app), but when it runs this is how long the window stands still.
        import gc

        began = time.perf_counter()
        gc.collect()
        out["full_gc"] = time.perf_counter() - began
    except Exception as exc:  # reported to the parent
        out["error"] = repr(exc)
    finally:
        heartbeat.stop()
        controller.window.close()


async def _updates(controller: Any, gateway: Any, count: int) -> list[float]:
    """Live quantity pushes: from the debounce firing to the cache model showing the change."""
    service = controller.runtime.service
    fired: list[float] = []
    original = service._fire_debounced

    def fire() -> None:
        fired.append(time.perf_counter())
        original()

    service._fire_debounced = fire
    model = controller.window.cache_model
    shown: list[float] = []
    for number in range(count):
        account, con_id, quantity = await asyncio.to_thread(gateway.holding, number * 7919 + 3)
        bigger = quantity + 1 if quantity > 0 else quantity - 1
        seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def changed(
            *_: Any, key: Any = (account, con_id), want: Decimal = bigger, done: Any = seen
        ) -> None:
            row = model.get(key)
            if row is not None and row.quantity == want and not done.done():
                done.set_result(time.perf_counter())

        model.dataChanged.connect(changed)
        model.rowsInserted.connect(changed)
        try:
            fired.clear()
            await asyncio.to_thread(gateway.adjust_quantity, account, con_id, bigger)
            at = await asyncio.wait_for(seen, 30)
        finally:
            model.dataChanged.disconnect(changed)
            model.rowsInserted.disconnect(changed)
        if not fired:
            raise RuntimeError("the update was shown without a debounced sync")
        shown.append(at - fired[-1])
        await _settled(controller)
    return shown


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
