"""Field text: plain decimals for quantities, Java-style doubles, framing and version ranges."""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sim import fields
from app.sim.framing import (
    FrameError,
    decode_fields,
    encode_frame,
    parse_version_range,
    read_frame,
)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, max_value=10**12,
                   min_value=-(10**12)))  # fmt: skip
def test_quantities_are_exact_plain_text(value: Decimal) -> None:
    text = fields.quantity(value)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == value


def test_quantity_examples() -> None:
    assert [fields.quantity(Decimal(t)) for t in ("100", "0.30", "1E+2", "-0", "0.0001")] == [
        "100",
        "0.3",
        "100",
        "0",
        "0.0001",
    ]


def test_doubles() -> None:
    assert fields.double(None) == "1.7976931348623157E308"
    assert fields.double(Decimal("NaN")) == "NaN"
    assert fields.double(Decimal("Infinity")) == "Infinity"
    assert fields.double(Decimal("-Infinity")) == "-Infinity"
    assert fields.double(Decimal("191.5")) == "191.5"
    assert fields.double(Decimal("1E-5")) == "0.00001"
    assert fields.double(Decimal("1E16")) == "10000000000000000"


def test_account_masking() -> None:
    assert fields.mask_account("DU1234567") == "…567"
    assert fields.mask_account("") == "<none>"


def test_frames_round_trip_and_version_ranges() -> None:
    frame = encode_frame(["61", "3", "", "x"])
    assert frame[:4] == struct.pack(">I", len(frame) - 4)
    assert decode_fields(frame[4:]) == ["61", "3", "", "x"]
    assert parse_version_range("v157..176 +PACEAPI") == (157, 176)
    assert parse_version_range("v176") == (176, 176)
    assert parse_version_range("v200..100") is None
    assert parse_version_range("hello") is None


def test_oversized_frames_are_refused_before_reading_them() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(struct.pack(">I", 10_000) + b"x" * 10)
        with pytest.raises(FrameError):
            await read_frame(reader, max_size=1000)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
