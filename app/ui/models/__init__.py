"""Qt table models: one per table, over domain values, keyed so live updates keep selection."""
