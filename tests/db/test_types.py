"""ExactDecimal and UTCDateTime on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from app.db.engine import create_engine
from app.db.types import ExactDecimal, UTCDateTime
from app.domain.decimals import decimal_text

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", ExactDecimal()),
    sa.Column("at", UTCDateTime()),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(tmp_path / "types.sqlite")
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


VALUES = [
    Decimal("0.0001"),
    Decimal("0.3"),
    Decimal("1234567.123456789"),
    Decimal("-1234567.123456789"),
    Decimal("-0.0001"),
    Decimal("150.25"),
    Decimal("0"),
    Decimal("100000000000000000000"),
    Decimal("12345678901234567890.123456789012345678"),  # beyond the 28-digit context
]


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_decimal_round_trips_exactly(engine: sa.Engine, value: Decimal) -> None:
    """Guards against Numeric-on-SQLite going through float (0.3 → 0.29999…)."""
    with engine.begin() as connection:
        connection.execute(things.insert().values(id=1, amount=value))
        back = connection.execute(sa.select(things.c.amount)).scalar_one()
    assert isinstance(back, Decimal)
    assert back == value
    assert str(back) == decimal_text(value)


def test_decimal_is_stored_as_canonical_text(engine: sa.Engine) -> None:
    """Guards against '150.250' and '150.25' being different values to SQL's `=` on SQLite."""
    with engine.begin() as connection:
        connection.execute(things.insert().values(id=1, amount=Decimal("150.250")))
        connection.execute(things.insert().values(id=2, amount=Decimal("1E+2")))
        connection.execute(things.insert().values(id=3, amount=Decimal("-0.00")))
        stored = connection.exec_driver_sql(
            "SELECT amount, typeof(amount) FROM things ORDER BY id"
        ).all()
        found = connection.execute(
            sa.select(things.c.id).where(things.c.amount == Decimal("150.2500"))
        ).scalar_one()
    assert stored == [("150.25", "text"), ("100", "text"), ("0", "text")]
    assert found == 1


@pytest.mark.parametrize("bad", [0.3, True, "0.3"], ids=repr)
def test_decimal_refuses_inexact_or_foreign_input(engine: sa.Engine, bad: object) -> None:
    """Guards against a float (already inexact) slipping into the ledger unnoticed."""
    with engine.begin() as connection, pytest.raises(StatementError, match="ExactDecimal takes"):
        connection.execute(things.insert().values(id=1, amount=bad))


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity")], ids=str)
def test_decimal_refuses_non_finite(engine: sa.Engine, bad: Decimal) -> None:
    """Guards against NaN/inf, which have no exact decimal text, being stored."""
    with engine.begin() as connection, pytest.raises(StatementError, match="exact decimal"):
        connection.execute(things.insert().values(id=1, amount=bad))


def test_decimal_refuses_float_results_from_sql_arithmetic(engine: sa.Engine) -> None:
    """Guards against SUM() on SQLite silently returning a float as if it were exact."""
    with engine.begin() as connection:
        connection.execute(
            things.insert(),
            [{"id": 1, "amount": Decimal("0.1")}, {"id": 2, "amount": Decimal("0.2")}],
        )
        with pytest.raises(TypeError, match="arithmetic"):
            connection.execute(sa.select(sa.func.sum(things.c.amount))).scalar_one()


def test_utc_datetime_round_trips(engine: sa.Engine) -> None:
    """Aware UTC in, the same aware UTC out (microseconds kept)."""
    moment = datetime(2026, 11, 26, 13, 15, 0, 123456, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(things.insert().values(id=1, at=moment))
        back = connection.execute(sa.select(things.c.at)).scalar_one()
        stored = connection.exec_driver_sql("SELECT at FROM things").scalar_one()
    assert back == moment
    assert back.tzinfo is UTC
    assert stored == "2026-11-26 13:15:00.123456"


def test_utc_datetime_converts_other_zones_to_utc(engine: sa.Engine) -> None:
    """Guards against a local wall-clock time being stored as if it were UTC."""
    new_york = timezone(timedelta(hours=-5))
    with engine.begin() as connection:
        connection.execute(
            things.insert().values(id=1, at=datetime(2026, 11, 26, 8, 15, tzinfo=new_york))
        )
        back = connection.execute(sa.select(things.c.at)).scalar_one()
    assert back == datetime(2026, 11, 26, 13, 15, tzinfo=UTC)
    assert back.utcoffset() == timedelta(0)


def test_utc_datetime_refuses_naive(engine: sa.Engine) -> None:
    """Guards against a naive datetime (unknown zone) being guessed as UTC."""
    naive = datetime(2026, 11, 26, 13, 15)
    with engine.begin() as connection, pytest.raises(StatementError, match="naive"):
        connection.execute(things.insert().values(id=1, at=naive))


@pytest.mark.parametrize(
    "build",
    [
        lambda c: c + 1,
        lambda c: 1 - c,
        lambda c: c < Decimal("10"),
        lambda c: c >= 0,
        lambda c: c.between(1, 2),
        lambda c: c.desc(),
        lambda c: -c,
    ],
    ids=["add", "rsub", "lt", "ge", "between", "desc", "neg"],
)
def test_decimal_refuses_sql_ordering_and_arithmetic(build: Any) -> None:
    """Guards against '10' < '9' and '1' || '1' on SQLite where PostgreSQL would compute."""
    with pytest.raises(TypeError, match="in Python"):
        build(things.c.amount)


def test_decimal_allows_equality_membership_and_null_tests(engine: sa.Engine) -> None:
    """`=`, `!=`, IN and IS NULL work, on the canonical text."""
    with engine.begin() as connection:
        connection.execute(
            things.insert(), [{"id": 1, "amount": Decimal("2.50")}, {"id": 2, "amount": None}]
        )
        amount = things.c.amount
        assert connection.scalars(sa.select(things.c.id).where(amount == Decimal("2.5"))).all() == [
            1
        ]
        assert connection.scalars(
            sa.select(things.c.id).where(amount.in_([Decimal("2.500")]))
        ).all() == [1]
        assert connection.scalars(sa.select(things.c.id).where(amount.is_(None))).all() == [2]
        assert connection.scalars(sa.select(things.c.id).where(amount != 0)).all() == [1]
