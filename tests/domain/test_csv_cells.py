"""CSV cells a spreadsheet would run as formulas are neutralised; numbers stay numbers."""

from __future__ import annotations

import pytest

from app.domain.export import csv_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+41 79 000 00 00", "'+41 79 000 00 00"),
        ("-1+2", "'-1+2"),  # a sign, then a formula: not a number
        ("-", "'-"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-601", "-601"),  # a loss: a number, kept
        ("-0.0001", "-0.0001"),
        ("150.123456789", "150.123456789"),
        ("DU111", "DU111"),
        ("note = fine inside", "note = fine inside"),
        (None, ""),
        (265598, 265598),
    ],
)
def test_csv_cell(value, written):
    assert csv_cell(value) == written
