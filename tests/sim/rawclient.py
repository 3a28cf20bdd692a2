"""A bare TWS-protocol client for byte-level tests, written apart from app.sim's own framing."""

from __future__ import annotations

import asyncio
import contextlib
import struct

Frame = list[str]


class RawClient:
    """Speaks just enough of the protocol to send requests and read raw frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.handshake: Frame | None = None

    @classmethod
    async def open(
        cls, port: int, client_id: int | None = None, versions: str = "v100..176"
    ) -> RawClient:
        """Connect, do the handshake and (when client_id is given) startApi."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.send_bytes(b"API\0" + _frame_bytes(versions.encode()))
        client.handshake = await client.read(5.0)
        if client_id is not None:
            client.send("71", "2", str(client_id), "")
        return client

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, *fields: str) -> None:
        self.writer.write(_frame_bytes("".join(f + "\0" for f in fields).encode()))

    async def read(self, within: float = 5.0) -> Frame | None:
        """The next frame's fields, or None at EOF."""
        try:
            header = await asyncio.wait_for(self.reader.readexactly(4), within)
            (size,) = struct.unpack(">I", header)
            payload = await asyncio.wait_for(self.reader.readexactly(size), within)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return payload.decode(errors="replace").split("\0")[:-1]

    async def read_until(self, msg_id: str, within: float = 5.0) -> list[Frame]:
        """Frames up to and including the first with this id (raises at EOF or timeout)."""
        frames: list[Frame] = []
        async with asyncio.timeout(within):
            while True:
                frame = await self.read(within)
                if frame is None:
                    raise EOFError(f"connection closed before message {msg_id}: {frames}")
                frames.append(frame)
                if frame[0] == msg_id:
                    return frames

    async def ready(self) -> list[Frame]:
        """After startApi: frames through nextValidId and the last farm notice (2158)."""
        frames = await self.read_until("9")
        while frames[-1][:4] != ["4", "2", "-1", "2158"]:
            frames += await self.read_until("4")
        return frames

    async def drain(self, quiet: float = 0.3, within: float = 5.0) -> tuple[list[Frame], bool]:
        """Frames until none arrives for `quiet` s; also whether the peer closed."""
        frames: list[Frame] = []
        async with asyncio.timeout(within):
            while True:
                try:
                    frame = await asyncio.wait_for(self._read_strict(), quiet)
                except TimeoutError:
                    return frames, False
                if frame is None:
                    return frames, True
                frames.append(frame)

    async def _read_strict(self) -> Frame | None:
        try:
            header = await self.reader.readexactly(4)
            (size,) = struct.unpack(">I", header)
            payload = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return payload.decode(errors="replace").split("\0")[:-1]

    async def closed_by_peer(self, within: float = 3.0) -> bool:
        """True when the server closes the socket within `within` s (data is discarded)."""
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _frame_bytes(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload
