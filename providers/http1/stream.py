"""A streamed answer's body as it arrives, with backpressure and the idle timeout between chunks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import TransportError, TransportTimeout

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["HIGH_WATER", "Stream"]

HIGH_WATER = 256 * 1024  # stream bytes buffered before the socket stops being read


class Stream:
    """A streamed body as it arrives: the caller's async iterator (each step: all bytes buffered so far).

    Above ``HIGH_WATER`` buffered bytes the socket stops being read; a step takes the whole buffer, so
    reading resumes with the next step. The idle timer runs only while the caller waits, and measures from
    the last byte received (or from when reading resumed: a pause of ours is not the server's silence).
    """

    __slots__ = (
        "_buffer", "_conn", "_done", "_error", "_idle", "_last", "_loop", "_paused", "_size", "_timer", "_waiter",
    )  # fmt: skip

    def __init__(self, conn: Connection, idle: float) -> None:
        self._conn: Connection | None = conn
        self._loop = conn.pool.loop
        self._idle = idle
        self._buffer: list[bytes] = []
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = self._loop.time()
        self._done = False
        self._error: TransportError | None = None

    def feed(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        self._last = self._loop.time()
        self._wake()
        if self._size > HIGH_WATER and not self._paused and self._conn is not None and self._conn.transport:
            self._paused = True
            self._conn.transport.pause_reading()

    def end(self, error: TransportError | None = None) -> None:
        """The body is complete (the connection goes back to the pool after this), or broken."""
        conn, self._conn = self._conn, None
        if self._paused and conn is not None and conn.transport and error is None:
            conn.transport.resume_reading()  # the socket is reused: it must be read again
        self._done = True
        self._error = error
        self._stop_timer()
        self._wake()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            waiter = self._waiter = self._loop.create_future()
            if self._timer is None:
                self._timer = self._loop.call_at(self._last + self._idle, self._on_idle)
            try:
                await waiter
            except asyncio.CancelledError:
                self.discard()  # the caller went away mid-stream
                raise
            finally:
                self._waiter = None
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        if self._paused and self._conn is not None and self._conn.transport:
            self._paused = False
            self._last = self._loop.time()
            self._conn.transport.resume_reading()
        return data

    async def close(self) -> None:
        """A body read to its end is already back in the pool; one still arriving closes its socket."""
        self.discard()

    def discard(self) -> None:
        conn, self._conn = self._conn, None
        self._done = True
        self._buffer.clear()
        self._stop_timer()
        if conn is not None:
            conn.abandon()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_idle(self) -> None:
        self._timer = None
        conn = self._conn
        if self._waiter is None or conn is None:
            return  # nobody waits: the next wait arms the timer again
        due = self._last + self._idle
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._on_idle)
            return
        conn.fail(
            TransportTimeout(f"{conn.provider} sent nothing for {self._idle:g}s mid-stream", provider=conn.provider)
        )
