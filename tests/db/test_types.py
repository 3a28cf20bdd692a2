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


def test_repeated_values_are_read_as_shared_objects(engine: sa.Engine) -> None:
    """Rows repeating a short decimal text or an instant give one shared (immutable) object
    each; every value read is still exactly what was stored, digit for digit.

    Guards the window's memory: 20,000 lifecycles read back held ~80,000 Decimals of a few
    distinct values (quantities, multipliers, zero P&L) and 40,000 equal datetimes."""
    synced = datetime(2026, 11, 26, 13, 15, 0, 123456, tzinfo=UTC)
    texts = ["100", "0", "100", "-2500", "0", "1E+2", "1.50", "150.25", "1234567.125", "0"]
    rows = [
        {"id": n, "amount": Decimal(text), "at": synced if n % 3 else synced + timedelta(hours=n)}
        for n, text in enumerate(texts, start=1)
    ]
    with engine.begin() as connection:
        connection.execute(things.insert(), rows)
        back = connection.execute(sa.select(things).order_by(things.c.id)).all()
    assert [str(r.amount) for r in back] == [decimal_text(Decimal(t)) for t in texts]
    assert [r.at for r in back] == [r["at"] for r in rows]
    assert all(r.at.tzinfo is UTC for r in back)
    amounts = {id(r.amount) for r in back}
    assert len(amounts) == len({str(r.amount) for r in back if len(str(r.amount)) <= 6}) + 1
    assert back[0].amount is back[2].amount is back[5].amount  # "100" three times
    assert back[1].amount is back[4].amount is back[9].amount  # "0"
    assert back[7].amount is not back[8].amount
    assert back[0].at is back[1].at  # consecutive rows, the same instant
    assert back[2].at == synced + timedelta(hours=3) and back[3].at == synced


def test_shared_decimals_are_bounded(engine: sa.Engine) -> None:
    """A column of more distinct short texts than SHARED_DECIMALS (the most remembered) reads
    every one exactly, those past the bound as new objects."""
    from app.db.types import SHARED_DECIMALS

    count = SHARED_DECIMALS + 50
    with engine.begin() as connection:
        connection.execute(things.insert(), [{"id": n, "amount": Decimal(n)} for n in range(count)])
        read = connection.execute(sa.select(things.c.amount).order_by(things.c.id)).scalars()
        back = list(read)
    assert [str(v) for v in back] == [str(n) for n in range(count)]
