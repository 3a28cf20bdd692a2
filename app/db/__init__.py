"""Database layer: SQLAlchemy tables, the repository and the Alembic runner.

The only package that imports SQLAlchemy or Alembic; ORM rows never leave it.

- `migrate.open_database(url)` → a ready `database.Database` (created, or backed up and
  migrated, or refused with an `errors.DatabaseError`); `upgrade`, `current`, `backup` for the CLI.
- `reader.LedgerReader` / `writer.LedgerWriter`: the two doors everything above this package
  uses — every read in a snapshot that takes no lock, every write one command (a sync's
  snapshot, a run, Mark closed, a statement's import); `Blocking…` twins for the CLI.
- `database.Database.run(fn, *args)`: `fn(session, *args)` in one writing transaction on the one
  database thread, `read(fn, *args)` in a read-only snapshot; `…_sync` for the CLI and tests.
- `tables`: the contract's tables (`…Row` classes); `types`: `ExactDecimal`, `UTCDateTime`.
- `repository`: the ledger's reads and writes inside one transaction — `rows` (the row mapping,
  the only code that knows column order), `queries`, `writes`, and `round_trip` (what reading a
  written lifecycle back gives, for the store's kept copy).
- `engine`: URLs, paths, the SQLite connection setup and the PostgreSQL engine; `sqlite_file`:
  read-only inspection and online backup of a SQLite file.
- `store.LedgerStore`: a sync's read-reconcile-write transaction; `concurrency`: the advisory
  locks and newest-snapshot guard that let several syncers share one PostgreSQL ledger.
"""
