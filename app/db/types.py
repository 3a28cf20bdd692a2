"""Column types: exact decimals and UTC datetimes, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.processors import str_to_datetime
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.domain.decimals import decimal_text

# On SQLite the column is TEXT: ordering would be lexicographic ('10' < '9') and `+` would
# concatenate, while PostgreSQL would compute. Refusing them keeps both backends identical.
_REFUSED = frozenset(
    {
        operators.add,
        operators.sub,
        operators.mul,
        operators.truediv,
        operators.floordiv,
        operators.mod,
        operators.neg,
        operators.concat_op,
        operators.lt,
        operators.le,
        operators.gt,
        operators.ge,
        operators.between_op,
        operators.not_between_op,
        operators.asc_op,
        operators.desc_op,
    }
)


def _refuse(op: OperatorType) -> None:
    if op in _REFUSED:
        raise TypeError(
            f"SQL {getattr(op, '__name__', op)} on an exact-decimal column would compare or "
            "compute text on SQLite; load the values and do it in Python"
        )


class _ExactDecimalComparator(TypeDecorator.Comparator[Decimal]):
    """Allows `=`, `!=`, IN and IS NULL; refuses SQL ordering and arithmetic (see _REFUSED)."""

    __slots__ = ()

    def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
        _refuse(op)
        return super().operate(op, *other, **kwargs)

    def reverse_operate(self, op: OperatorType, other: Any, **kwargs: Any) -> ColumnElement[Any]:
        _refuse(op)
        return super().reverse_operate(op, other, **kwargs)


SHARED_DECIMAL_TEXT = 6
"""Stored decimal texts this short are read as one shared Decimal per distinct text."""
SHARED_DECIMALS = 4096
"""At most this many distinct short texts are remembered per result column."""


class ExactDecimal(TypeDecorator[Decimal]):
    """A `Decimal` stored without loss: TEXT on SQLite, unconstrained NUMERIC on PostgreSQL.

    SQLAlchemy's Numeric goes through float on SQLite. Only `=`, `!=`, IN and IS NULL are
    allowed in SQL expressions: ordering and arithmetic would see text on SQLite, so they raise
    TypeError (sort and sum in Python). Binding a float is refused (it is already inexact);
    convert with `Decimal(str(x))`.
    """

    impl = Text
    cache_ok = True
    comparator_factory = _ExactDecimalComparator

    @property
    def python_type(self) -> type[Decimal]:
        """Values read back are `decimal.Decimal`."""
        return Decimal

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """NUMERIC where the database has an exact one, TEXT elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any | None, dialect: Dialect) -> Any:
        """Decimal or int in; canonical text (SQLite) or the Decimal (PostgreSQL) out."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(
                f"ExactDecimal takes Decimal or int, not {type(value).__name__} ({value!r})"
            )
        number = Decimal(value)
        text = decimal_text(number)
        if dialect.name == "postgresql":
            return Decimal(text)
        return text

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """`process_bind_param`, with a shortcut for the common value on SQLite.

        A sync of 20,000 positions binds a few hundred thousand decimals. A finite Decimal whose
        `str()` has no exponent and no trailing fractional zero is already `decimal_text`'s
        canonical form; everything else takes the full path (which also refuses floats and
        non-finite values).
        """
        full = super().bind_processor(dialect)
        if full is None or dialect.name == "postgresql":
            return full
        # The last Decimal converted, with its text, as one tuple swapped atomically (a processor
        # may be shared between threads): a column binds the very same object row after row
        # (a multiplier of 1, a zero realized P&L, a shared quantity), and Decimals are immutable.
        memo: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            seen, known = memo[0]
            if value is seen:
                return known  # (None is "seen" at first: None binds as None)
            if value.__class__ is Decimal:
                text = str(value)
                last = text[-1]
                canonical = "0" < last <= "9" or (last == "0" and "." not in text and text != "-0")
                if canonical and "E" not in text and "e" not in text:
                    memo[0] = (value, text)
                    return text
            return full(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """`process_result_value`, with a shortcut for SQLite's stored text.

        Short texts (a quantity, a multiplier, a zero realized P&L) repeat across thousands of
        rows: each one is read as one shared Decimal (immutable, so equal digits may be one
        object) instead of a new one per row; 20,000 lifecycles otherwise hold ~80,000
        Decimals of a few distinct values (~8 MB). Longer texts (prices, money) are mostly
        distinct and are not remembered.
        """
        full = super().result_processor(dialect, coltype)
        if full is None or dialect.name == "postgresql":
            return full
        shared: dict[str, Decimal] = {}

        def process(value: Any) -> Any:
            if value is None:
                return None
            if value.__class__ is str:
                if len(value) > SHARED_DECIMAL_TEXT:
                    return Decimal(value)
                known = shared.get(value)
                if known is None:
                    known = Decimal(value)
                    if len(shared) < SHARED_DECIMALS:
                        shared[value] = known
                return known
            return full(value)

        return process

    def process_literal_param(self, value: Any | None, dialect: Dialect) -> str:
        """Inline rendering (offline SQL, DDL defaults)."""
        if value is None:
            return "NULL"
        bound = self.process_bind_param(value, dialect)
        return str(bound) if dialect.name == "postgresql" else f"'{bound}'"

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Decimal | None:
        """Stored text (or NUMERIC) back to an exact Decimal."""
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            # SQLite hands back a float only from SQL arithmetic on the column (SUM, +);
            # returning it would silently break exactness.
            raise TypeError(
                "an exact-decimal column came back as a float (SQL arithmetic on SQLite); "
                "do the arithmetic in Python"
            )
        return Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC `datetime`, stored as naive UTC; naive input is refused, not guessed."""

    impl = DateTime(timezone=False)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """Values read back are aware `datetime`s in UTC."""
        return datetime

    def process_bind_param(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Any aware datetime in; the same instant as naive UTC out."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime takes datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: pass an aware (UTC) datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """`process_bind_param`, remembering the last value converted.

        One sync stamps most of its rows with the same few instants (taken_at, started_at), so a
        20,000-row write converts a handful of datetimes instead of 60,000. The memo holds
        (value, result) as one tuple, swapped atomically, and datetimes are immutable: a value
        identical to the remembered one has the same result.
        """
        full = super().bind_processor(dialect)
        if full is None:
            return full
        last: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            seen, result = last[0]
            if value is seen and value is not None:
                return result
            result = full(value)
            last[0] = (value, result)
            return result

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """`process_result_value`, remembering the last SQLite text converted.

        A sync stamps thousands of rows with the same instant (`last_synced_at`, a first sync's
        `opened_at`): a column read row after row gives the same text again and again, and gets
        the same (immutable) datetime back instead of parsing a new one for each row (48 bytes
        and a parse each; 20,000 lifecycles hold two such columns). Only text is remembered:
        it is the stored value itself, so equal texts convert alike.
        """
        full = super().result_processor(dialect, coltype)
        if full is None:
            return full
        # SQLite's stored text is parsed by `datetime.fromisoformat` (SQLAlchemy's
        # str_to_datetime): parsing it with a "+00:00" suffix gives the aware UTC value
        # process_result_value would make of it in one C call, where its `replace(tzinfo=...)`
        # alone costs ~2 µs (a re-fold of one key reads a few thousand datetimes). Any other
        # text (one with a zone already, a date alone) takes the full path, as before.
        fast = self.impl_instance.result_processor(dialect, coltype) is str_to_datetime
        last: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            if value is None:
                return None
            seen, result = last[0]
            if value.__class__ is str:
                if value == seen:
                    return result
                try:
                    result = _from_utc_text(value) if fast else full(value)
                except ValueError:
                    result = full(value)
                last[0] = (value, result)
                return result
            return full(value)

        return process

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Stored naive UTC back to an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)


def _from_utc_text(text: str) -> datetime:
    """Stored naive UTC text as an aware UTC datetime (ValueError: not such a text)."""
    return datetime.fromisoformat(text + "+00:00")
