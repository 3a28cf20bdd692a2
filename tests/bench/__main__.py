"""`python -m tests.bench` (or `.ci/dev bench`): measure every budget of DESIGN.md.

    python -m tests.bench [--sizes 1000,20000] [--rounds 5] [--updates 10] [--json FILE]
                          [--no-cli] [--no-ui] [--fills 1000] [--no-refold | --refold-only]

Prints a table (figure, floor, ratio, budget, met or not) and writes every sample as JSON
(default: tests/bench/results.json). Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import os
import sys
import time
from pathlib import Path

from tests.bench.report import ONE_KEY, Samples, document, evaluate, table
from tests.bench.syncs import run_size

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"


def calibrate() -> float:
    """Seconds a fixed pure-Python loop takes (best of three): how fast this host runs now.

    On a shared virtual machine the same code runs up to ~20% slower at some times than at
    others; this figure, taken at the start and the end, says which kind of run it was.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return best


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--sizes", default="1000,20000", help="position counts (50 accounts "
                        "at 20,000; comma-separated)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="runs of every figure")
    parser.add_argument("--updates", type=int, default=10, help="single updates per size")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write figures")
    parser.add_argument("--no-cli", action="store_true", help="skip the headless command")
    parser.add_argument("--no-ui", action="store_true", help="skip the window figures")
    parser.add_argument("--fills", type=int, default=1000, help="fills of the one key "
                        "re-derived (DESIGN: 1,000)")  # fmt: skip
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-refold", action="store_true", help="skip re-deriving one key")
    only.add_argument("--refold-only", action="store_true", help="only re-derive one key "
                      "(a few seconds; no simulator, no window)")  # fmt: skip
    return parser.parse_args(argv)


def compile_bytecode() -> None:
    """Compile the app's (and this harness's) modules to __pycache__ before timing anything.

    Every figure from a child process starts Python the way a user does, and a user's app runs
    from bytecode: pip compiles an installed wheel, the PyInstaller build bundles it, a checkout
    writes it on its first run. Where PYTHONDONTWRITEBYTECODE is set (this machine's shell), no
    run ever writes it, and each child would compile ~150 modules from source first (~0.3 s of a
    cold start). Existing bytecode is still read under that variable; stale files are rewritten.
    """
    root = Path(__file__).resolve().parents[2]
    for folder in (root / "app", root / "tests"):
        compileall.compile_dir(folder, quiet=1, workers=1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    speed = calibrate()
    print(f"calibration loop at start: {speed * 1000:.0f} ms", flush=True)
    compile_bytecode()
    samples: Samples = {}
    if not args.no_refold:
        from tests.bench.refold import run_refold

        print(f"one key with {args.fills:,} fills, re-derived", flush=True)
        samples[ONE_KEY] = run_refold(
            args.fills, args.rounds, log=lambda line: print(line, flush=True)
        )
    for size in [] if args.refold_only else sizes:
        started = time.perf_counter()
        print(f"{size:,} positions", flush=True)
        samples[size] = run_size(
            size,
            args.rounds,
            args.updates,
            cli=not args.no_cli,
            log=lambda line: print(line, flush=True),
        )
        if not args.no_ui:
            from tests.bench.window import run_window_figures

            samples[size].update(
                run_window_figures(
                    size, args.rounds, args.updates, log=lambda line: print(line, flush=True)
                )
            )
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    doc = document(samples, argv, args.rounds)
    doc["machine"]["load_average_at_start"] = [round(x, 2) for x in load]
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["machine"]["calibration_loop_s"] = [round(speed, 4), round(calibrate(), 4)]
    start, end = doc["machine"]["calibration_loop_s"]
    print(f"calibration loop: {start * 1000:.0f} ms at the start, {end * 1000:.0f} ms at the end")
    print()
    print(table(evaluate(samples)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
