"""Database layer: SQLAlchemy tables, the repository and the Alembic runner.

The only package that imports SQLAlchemy or Alembic; ORM rows never leave it.
"""
