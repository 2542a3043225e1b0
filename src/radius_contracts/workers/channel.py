"""The pipe between the daemon's main process and one worker: framed messages over a Unix
stream socket.

A message is a tuple whose first item names it (see workers.pool and workers.process for the
kinds). Frames are a 4-octet length and a pickle: both ends are this program, started by the
main process, on one host, so nothing untrusted ever reads or writes the socket.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

__all__ = ["Channel", "ChannelClosed"]

_LENGTH = struct.Struct("!I")
_MAX_FRAME = 64 << 20  # a batch of auth log events or a stats snapshot is far below this


class ChannelClosed(Exception):
    """The other end went away (it exited, or closed its end)."""


class Channel:
    """One end of a worker pipe on the running event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    def send(self, *message: Any) -> None:
        """Queue ``message`` for sending (never blocks; see drain)."""
        if self._writer.is_closing():
            raise ChannelClosed("the channel is closed")
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(data)) + data)

    async def drain(self) -> None:
        """Wait until what was sent has left (backpressure when the other end is slow)."""
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ChannelClosed(str(exc)) from None

    async def receive(self) -> tuple[Any, ...]:
        try:
            header = await self._reader.readexactly(_LENGTH.size)
            (size,) = _LENGTH.unpack(header)
            if size > _MAX_FRAME:
                raise ChannelClosed(f"a frame of {size} octets")
            data = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise ChannelClosed(str(exc) or "end of stream") from None
        message: tuple[Any, ...] = pickle.loads(data)  # noqa: S301 - our own process, see above
        return message

    def close(self) -> None:
        self._writer.close()
