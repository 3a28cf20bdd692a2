"""TWS socket framing: the `API\\0` prefix, length-prefixed frames and NUL-terminated fields."""

from __future__ import annotations

import asyncio
import struct

API_PREFIX = b"API\0"
SERVER_VERSION = 176
# The range of client versions we can answer with SERVER_VERSION (tws-protocol.md §1).
_LENGTH = struct.Struct(">I")
# Requests are tiny; anything near this size is garbage or an attack, never a real client.
DEFAULT_MAX_FRAME = 1 << 20


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame (too long, or not decodable)."""


def encode_frame(fields: list[str]) -> bytes:
    """One frame: big-endian length, then every field followed by a NUL."""
    payload = "\0".join(fields).encode() + b"\0"
    return _LENGTH.pack(len(payload)) + payload


def encode_frames(messages: list[list[str]]) -> bytes:
    """Several frames joined, for one socket write."""
    return b"".join(encode_frame(fields) for fields in messages)


def decode_fields(payload: bytes) -> list[str]:
    """Split a frame's payload on NUL; the terminator's empty tail is dropped."""
    parts = payload.decode("utf-8", errors="replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


async def read_frame(reader: asyncio.StreamReader, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """The next frame's payload; raises FrameError when it announces more than `max_size`."""
    header = await reader.readexactly(_LENGTH.size)
    (size,) = _LENGTH.unpack(header)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the {max_size}-byte limit")
    return await reader.readexactly(size)


def parse_version_range(text: str) -> tuple[int, int] | None:
    """`v157..176 +PACEAPI` → (157, 176); `v176` → (176, 176); None when unparseable."""
    if not text.startswith("v"):
        return None
    spec = text[1:].split(" ", 1)[0]
    low_text, sep, high_text = spec.partition("..")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        return None
    return (low, high) if low <= high else None
