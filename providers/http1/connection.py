"""One upstream socket: an ``asyncio.Protocol`` that sends a request and reads its answer through httptools."""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING, cast

import httptools

from ..errors import TransportError, TransportTimeout
from ..types import UpstreamRequest
from .stream import Stream
from .wire import IDLE_CAP, Key, Stale, describe, idle_seconds

if TYPE_CHECKING:
    from .pool import Http1Transport

__all__ = ["BUSY", "CLOSED", "IDLE", "Connection", "Result"]

IDLE, BUSY, CLOSED = 0, 1, 2
Result = tuple[int, dict[str, str], "bytes | Stream"]


class Connection(asyncio.Protocol):
    """One socket, one exchange at a time. httptools calls the ``on_*`` methods from ``feed_data``; what they
    decide (complete, reusable) is acted on after ``feed_data`` returns, never inside it."""

    __slots__ = (
        "active", "body", "complete", "decoder", "encoding", "head_only", "headers", "headers_done", "idle_until",
        "interim", "keep_alive", "keep_alive_for", "key", "lost", "parser", "pool", "provider", "received", "reused",
        "state", "status", "stray", "stream", "stream_wanted", "timeout", "timer", "transport", "until_close", "waiter",
    )  # fmt: skip

    # the exchange in progress, set by start()
    status: int
    headers: dict[str, str]
    body: list[bytes]
    timeout: float
    stream_wanted: bool
    head_only: bool
    received: bool  # a byte of the answer arrived (after one, never a retry)
    headers_done: bool
    interim: bool
    complete: bool
    stray: bool  # more bytes than the answer: the socket is out of step
    until_close: bool
    keep_alive: bool
    encoding: str | None
    decoder: zlib._Decompress | None
    idle_until: float

    def __init__(self, pool: Http1Transport, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.state = BUSY
        self.reused = False
        self.lost = False  # EOF, reset or stray bytes: never used again
        self.keep_alive_for = IDLE_CAP
        self.active = False
        self.waiter: asyncio.Future[Result] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.stream: Stream | None = None
        self.provider = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    # ---- the exchange, as the transport drives it

    def start(self, request: UpstreamRequest, head: bytes, deadline: float, timeout: float) -> asyncio.Future[Result]:
        loop = self.pool.loop
        self.waiter = waiter = loop.create_future()
        self.timer = loop.call_at(deadline, self._on_deadline)
        self.active, self.provider, self.timeout = True, request.provider_id, timeout
        self.stream_wanted, self.head_only = request.stream, request.method == "HEAD"
        self.received = self.headers_done = self.complete = self.interim = self.stray = self.until_close = False
        self.status, self.headers, self.body, self.encoding, self.decoder = 0, {}, [], None, None
        if self.lost:
            self.broken(None)  # closed while handed over to this caller
        elif self.transport is not None:
            self.transport.writelines((head, request.body))
        return waiter

    def fail(self, error: TransportError | Stale) -> None:
        """The exchange cannot complete: whoever waits hears why; the socket is closed, not pooled."""
        waiter, stream = self.waiter, self.stream
        self._end()
        stale = False
        if stream is not None:
            stream.end(cast(TransportError, error))
        elif waiter is not None and not waiter.done():
            waiter.set_exception(error)
            stale = isinstance(error, Stale)
        self.pool.discard(self, keep_slot=stale)  # a stale socket's slot goes to its retry

    def abandon(self) -> None:
        """The caller went away mid-exchange (cancelled, or a stream closed early)."""
        self._end()
        self.pool.discard(self)

    def _end(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.active, self.waiter, self.timer, self.stream, self.body = False, None, None, None, []

    def _on_deadline(self) -> None:
        self.timer = None
        self.fail(TransportTimeout(f"{self.provider} did not answer within {self.timeout:g}s", provider=self.provider))

    def broken(self, exc: BaseException | None) -> None:
        """The socket broke (or the answer is unreadable): the message says how far the exchange got."""
        provider, reason = self.provider, describe(exc)
        if self.stream is not None:
            self.fail(TransportError(f"{provider} broke the stream: {reason}", provider=provider))
        elif self.reused and not self.received:
            self.fail(Stale())
        elif self.headers_done:
            self.fail(TransportError(f"{provider} closed the connection: {reason}", provider=provider))
        else:
            self.fail(TransportError(f"cannot reach {provider}: {reason}", provider=provider))

    def _finish(self) -> None:
        """The whole answer is in: hand it over, then pool the socket or close it."""
        stream, waiter = self.stream, self.waiter
        if self.decoder is not None and (tail := self.decoder.flush()):
            self._keep(tail)
        if stream is not None:
            stream.end()
        elif waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.headers, b"".join(self.body)))
        if self.head_only:
            self.parser = httptools.HttpResponseParser(self)  # llhttp would wait for the body HEAD never gets
        reusable = self.keep_alive and not self.stray and not self.lost
        self._end()
        if reusable:
            self.pool.release(self)
        else:
            self.pool.discard(self)

    # ---- asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes nobody asked for: the socket is out of step
            self._gone()
            if self.transport is not None:
                self.transport.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not self.complete:
                self.broken(ValueError(f"malformed response ({describe(exc)})"))
                return
            self.stray = True  # a complete answer followed by more
        if self.complete:
            self._finish()

    def eof_received(self) -> bool:
        self._closed_by_server(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_by_server(exc)

    def _closed_by_server(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.active:
            self._gone()
        elif self.until_close and self.headers_done and exc is None:
            self.complete = True  # read-until-close: the end of the body
            self._finish()
        else:
            self.broken(exc)

    def _gone(self) -> None:
        self.lost = True
        if self.state == IDLE:
            self.pool.discard(self)
        # else a caller was just handed this socket: start() finds it lost

    # ---- httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise ValueError("a second answer to one request")  # stops the parser; the socket is not reused

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a chunked body's trailer: not part of the head the caller has (aiohttp dropped them too)
        key, text = name.lower().decode("latin-1"), value.decode("utf-8", "surrogateescape")
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        parser, headers = self.parser, self.headers
        status = parser.get_status_code()
        if status < 200:
            self.interim = True  # 100 Continue and the like: the real answer follows
            return
        self.status, self.headers_done, self.keep_alive = status, True, parser.should_keep_alive()
        if self.keep_alive:
            advised = headers.get("keep-alive")
            self.keep_alive_for = idle_seconds(advised) if advised else IDLE_CAP
        self.until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
            and not self.head_only
        )
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "deflate"):
            self.encoding = encoding
            headers.pop("content-encoding")
            headers.pop("content-length", None)
        if self.head_only:
            self.complete = True
        elif self.stream_wanted and status < 400:
            if self.timer is not None:
                self.timer.cancel()  # the stream's idle timer takes over
                self.timer = None
            self.stream = stream = Stream(self, self.pool.stream_idle_timeout)
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((status, headers, stream))

    def on_body(self, data: bytes) -> None:
        if self.complete:
            raise ValueError("a body after HEAD")  # stops the parser; the socket is not reused
        if self.encoding is not None:
            if self.decoder is None:
                if self.encoding == "gzip":
                    wbits = 16 + zlib.MAX_WBITS
                elif data[0] & 0x0F == 8:  # deflate is zlib-wrapped by the RFC, raw from some servers
                    wbits = zlib.MAX_WBITS
                else:
                    wbits = -zlib.MAX_WBITS
                self.decoder = zlib.decompressobj(wbits)
            data = self.decoder.decompress(data)
            if not data:
                return
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        if self.stream is not None:
            self.stream.feed(data)
        else:
            self.body.append(data)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim, self.headers = False, {}
        else:
            self.complete = True
