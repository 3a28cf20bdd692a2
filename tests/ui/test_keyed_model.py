"""KeyedTableModel keeps keys, rows and order consistent through any mix of updates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt

from app.ui.models.keyed import SORT_ROLE, Column, KeyedTableModel


@dataclass(frozen=True)
class Item:
    key: int
    group: str
    amount: Decimal | None


class ItemModel(KeyedTableModel):
    columns = (
        Column("Group", lambda i: i.group, lambda i: i.group),
        Column("Amount", lambda i: i.amount, lambda i: str(i.amount), numeric=True),
    )
    default_order = staticmethod(lambda i: (i.group, i.key))

    def __init__(self) -> None:
        super().__init__(lambda i: i.key)


items = st.builds(
    Item,
    key=st.integers(0, 30),
    group=st.sampled_from(["a", "b", "c"]),
    amount=st.none() | st.integers(-50, 50).map(Decimal),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(items, max_size=6)),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 30), max_size=4)),
        st.tuples(st.just("sort"), st.tuples(st.integers(-1, 1), st.booleans())),
        st.tuples(st.just("filter"), st.sampled_from(["", "a", "b"])),
        st.tuples(st.just("reset"), st.lists(items, max_size=8)),
    ),
    max_size=25,
)


@given(operations)
@settings(max_examples=150, deadline=None)
def test_positions_and_order_stay_consistent(qapp, ops):
    model = ItemModel()
    for op, arg in ops:
        if op == "upsert":
            model.upsert(arg)
        elif op == "remove":
            model.remove(arg)
        elif op == "sort":
            column, descending = arg
            order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            model.sort(column, order)
        elif op == "filter":
            model.set_filter(lambda i, g=arg: not g or i.group == g)
        else:
            model.reset(arg)
        shown = model.visible_values()
        assert len(shown) == model.rowCount()
        for row, item in enumerate(shown):
            assert model.row_of(item.key) == row
            assert model.data(model.index(row, 0), SORT_ROLE) == item.group
        assert len({i.key for i in shown}) == len(shown)
        sort = model._sort
        if sort is not None and sort[0] == 1:
            values = [(1, 0) if i.amount is None else (0, i.amount) for i in shown]
            expected = sorted(values, reverse=sort[1] == Qt.SortOrder.DescendingOrder)
            assert values == expected
        elif sort is None:
            assert shown == sorted(shown, key=lambda i: (i.group, i.key))


def test_upsert_moving_a_row_in_the_default_order_resorts(qapp):
    """Regression: with no column sorted, an update that changed a row's default-order value
    (its group) left it where it was, out of order (found by the property test above)."""
    model = ItemModel()
    model.upsert([Item(0, "b", None), Item(1, "a", None)])
    model.upsert([Item(0, "a", None)])
    assert [i.key for i in model.visible_values()] == [0, 1]
    assert model.row_of(0) == 0 and model.row_of(1) == 1
