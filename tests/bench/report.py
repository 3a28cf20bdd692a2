"""The figures as a table (figure, floor, ratio, budget, met or not) and as JSON."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Samples = dict[int, dict[str, list[float]]]  # size → figure → samples

ONE_KEY = 1
"""The size the re-derivation figures are filed under: one key (with --fills fills)."""


@dataclass(frozen=True)
class Line:
    """One table row: a figure of one size, optionally a floor and a budget."""

    label: str
    size: int
    figure: str
    floor: tuple[str, ...] = ()  # figures summed into the floor (per round, then median)
    budget: float | None = None  # an absolute limit (same unit as the figure)
    ratio_budget: float | None = None  # a limit on figure / floor
    unit: str = "s"
    design: bool = True  # a DESIGN.md budget (False: the issue's own acceptance line)
    worst: bool = False  # the budget holds for every sample ("never", "each update")


def lines(sizes: list[int]) -> list[Line]:
    """Every row of the table for these sizes (budgets apply at 20,000 where DESIGN says so)."""
    out: list[Line] = []
    for size in sizes:
        if size == ONE_KEY:
            out += [
                Line("re-derive one key with 1,000 fills: the pure fold", size, "refold.fold",
                     budget=0.05),
                Line("re-derive one key with 1,000 fills: Mark closed, load + fold + write, "
                     "committed", size, "refold.mark_closed", budget=0.05),
                Line("re-derive one key with 1,000 fills: late commission, its whole sync", size,
                     "refold.commission", budget=0.05),
                Line("re-derive one key: Mark closed, cold: a fresh engine's first statements",
                     size, "refold.mark_closed.cold"),
                Line("re-derive one key: late commission, cold: a fresh engine's first "
                     "statements", size, "refold.commission.cold"),
            ]  # fmt: skip
            continue
        at_scale = size >= 20_000
        own = 1.0 if at_scale else None
        out += [
            Line("first sync: app's own work", size, "sync.first.own", budget=own),
            Line("prices moved: app's own work", size, "sync.moved.own", budget=own),
            Line("nothing changed, the periodic sync: app's own work", size, "sync.periodic.own",
                 budget=0.3 if at_scale else None),
            Line("nothing changed, Sync now: app's own work", size, "sync.unchanged.own",
                 budget=0.3 if at_scale else None),
            Line("nothing changed, cold: the sync after the first: app's own work", size,
                 "sync.cold.own"),
            Line("nothing changed, cold: the first after a restart: app's own work", size,
                 "sync.restart.own"),
            Line("first sync: database part", size, "sync.first.db", ("floor.sqlite.first",),
                 ratio_budget=3.0 if at_scale else None, design=False),
            Line("prices moved: database part", size, "sync.moved.db", ("floor.sqlite.moved",),
                 ratio_budget=3.0 if at_scale else None, design=False),
            Line("nothing changed: database part", size, "sync.unchanged.db",
                 ("floor.sqlite.unchanged",)),
            Line("first sync: total in-process", size, "sync.first.total", ("ib.snapshot",)),
            Line("prices moved: total in-process", size, "sync.moved.total", ("ib.snapshot",)),
            Line("headless `sync`, empty ledger", size, "cli.first",
                 ("floor.ib.process", "floor.sqlite.first"),
                 ratio_budget=1.5 if at_scale else None),
            Line("headless `sync`, prices moved", size, "cli.moved",
                 ("floor.ib.process", "floor.sqlite.moved"),
                 ratio_budget=1.5 if at_scale else None),
            Line("one update → committed", size, "update.committed", budget=0.1, worst=True),
            Line("one update → shown in the window", size, "ui.update.shown", budget=0.1,
                 worst=True),
            Line("Qt loop longest stall during a full sync", size, "ui.stall",
                 budget=0.05 if at_scale else None, worst=True),
            Line("offline cold start → painted window", size, "ui.cold_start",
                 budget=2.0 if at_scale else 1.0 if size <= 100 else None,
                 worst=True),
            Line("peak RSS at that first paint", size, "ui.cold_rss", unit="MB",
                 budget=300.0 if at_scale else None, worst=True),
            Line("whole-heap garbage collection, window connected (rare)", size, "ui.full_gc"),
            # DESIGN.md: ≤ 300 MB resident, "connected too".
            Line("peak RSS, window connected, through full syncs and updates", size, "ui.rss",
                 unit="MB", budget=300.0 if at_scale else None, worst=True),
            Line("peak RSS, headless `sync`", size, "cli.first.rss", unit="MB"),
        ]  # fmt: skip
    return out


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and the samples."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "samples": [round(s, 6) for s in samples],
    }


def _floor(per_size: dict[str, list[float]], names: tuple[str, ...]) -> float | None:
    if not names or any(name not in per_size for name in names):
        return None
    count = min(len(per_size[name]) for name in names)
    sums = [sum(per_size[name][i] for name in names) for i in range(count)]
    return statistics.median(sums)


def evaluate(samples: Samples) -> list[dict[str, Any]]:
    """Every table row with its figures and verdict."""
    rows: list[dict[str, Any]] = []
    for line in lines(sorted(samples)):
        per_size = samples[line.size]
        values = per_size.get(line.figure)
        row: dict[str, Any] = {
            "label": line.label,
            "size": line.size,
            "figure": line.figure,
            "unit": line.unit,
            "design_budget": line.design,
        }
        if values:
            row.update(summary(values))
        floor = _floor(per_size, line.floor)
        if floor is not None:
            row["floor"] = floor
            row["floor_of"] = list(line.floor)
            if values:
                row["ratio"] = row["median"] / floor
        if line.budget is not None:
            row["budget"] = line.budget
            row["checked"] = "max" if line.worst else "median"
            if values:
                row["met"] = row["max" if line.worst else "median"] <= line.budget
            else:
                row["met"] = None  # not measured
        if line.ratio_budget is not None:
            row["ratio_budget"] = line.ratio_budget
            row["met"] = "ratio" in row and row["ratio"] <= line.ratio_budget
        rows.append(row)
    scaled = [size for size in samples if "update.committed" in samples[size]]
    for size in scaled:
        if size == min(scaled):
            continue
        small = statistics.median(samples[min(scaled)]["update.committed"])
        large = statistics.median(samples[size]["update.committed"])
        rows.append({
            "label": f"one update → committed: {size:,} vs {min(scaled):,}",
            "size": size,
            "figure": "update.committed.scaling",
            "unit": "×",
            "design_budget": False,
            "median": large / small,
            "ratio_budget": 2.0,
            "met": large / small <= 2.0,
        })  # fmt: skip
    return rows


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.2f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:.2f}{unit}"


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: figure, size, median (min–max), floor, ratio, budget, met."""
    out = [
        "| figure | positions | median (min–max) | floor | ratio | budget | met |",
        "|---|---:|---|---:|---:|---:|:---:|",
    ]
    for row in rows:
        unit = row["unit"]
        if "median" not in row:
            figure = "not measured"
        elif "min" in row:
            figure = (
                f"{_fmt(row['median'], unit)} ({_fmt(row['min'], unit)}–{_fmt(row['max'], unit)})"
            )
        else:
            figure = _fmt(row["median"], unit)
        floor = _fmt(row["floor"], unit) if "floor" in row else ""
        ratio = f"{row['ratio']:.2f}×" if "ratio" in row else ""
        if "budget" in row:
            budget = f"≤ {_fmt(row['budget'], unit)}" + ("" if row["design_budget"] else " ¹")
        elif "ratio_budget" in row:
            budget = f"≤ {row['ratio_budget']:g}×" + ("" if row["design_budget"] else " ¹")
        else:
            budget = ""
        met = {True: "yes", False: "**no**"}.get(row.get("met"), "")  # type: ignore[arg-type]
        if "met" in row and row["met"] is None:
            met = "**not measured**"
        if row.get("checked") == "max" and "budget" in row:
            budget += " (every run)"
        out.append(
            f"| {row['label']} | {row['size']:,} | {figure} | {floor} | {ratio} | {budget} "
            f"| {met} |"
        )
    return "\n".join(out)


def document(samples: Samples, argv: list[str], rounds: int) -> dict[str, Any]:
    """The JSON written beside the benchmark."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m tests.bench " + " ".join(argv),
        "rounds": rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": None,
        },
        "rows": evaluate(samples),
        "samples": {str(size): figures for size, figures in samples.items()},
    }
