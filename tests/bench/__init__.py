"""Benchmarks for every budget of DESIGN.md: `python -m tests.bench` (or `.ci/dev bench`).

Not part of the normal run except test_smoke.py (the same code path at a tiny size, no timings
asserted). Modules: gateway (the simulator in its own process, scripted over a pipe), floors
(plain sqlite3 and ib_insync alone — this folds in the former tests/sim/bench.py), probe (what
part of a sync is the app's own work), syncs (in-process syncs, one update, the headless
command), window and window_driver (the real window in a child process), report (table, JSON).
"""
