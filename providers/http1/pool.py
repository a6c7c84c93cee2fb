"""The transport: a keep-alive pool of ``Connection`` sockets per host, and one exchange per ``send``."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from ..errors import TransportError, TransportTimeout
from ..types import UpstreamRequest, UpstreamResponse
from .connection import BUSY, CLOSED, IDLE, Connection, Result
from .stream import Stream
from .wire import Key, Stale, Target, describe, parse_target, request_head

__all__ = ["Http1Transport"]

_URL_CACHE = 256  # distinct upstream URLs are few (one per provider and endpoint)


class Http1Transport:
    """``Transport`` over HTTP/1.1 keep-alive sockets. Create it inside the running loop (the app's lifespan).

    Usage::

        transport = Http1Transport(connect_timeout=5, stream_idle_timeout=120, pool_size=512)
        response = await transport.send(request, timeout=60)   # TransportError / TransportTimeout on failure
        if response.chunks is not None:
            async for data in response.chunks: ...
            await response.aclose()
        await transport.aclose()
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        stream_idle_timeout: float,
        pool_size: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.stream_idle_timeout = stream_idle_timeout
        self._connect_timeout = connect_timeout
        self._size = pool_size
        self._ssl = ssl_context  # None: the default context, made at the first https:// connection
        self._targets: dict[str, Target] = {}
        self._open = 0  # sockets counted against pool_size: connecting, in use, idle
        self._idle: dict[Key, list[Connection]] = {}
        self._conns: set[Connection] = set()
        self._waiters: deque[tuple[Key, asyncio.Future[Connection | None]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        provider = request.provider_id
        deadline = self.loop.time() + timeout
        try:
            target = self._targets.get(request.url) or self._target(request.url)
            head = request_head(request, target)
        except ValueError as exc:
            raise TransportError(f"cannot reach {provider}: {exc}", provider=provider) from None
        try:
            conn = await self._acquire(target.key, deadline)
        except TimeoutError:
            raise TransportTimeout(f"{provider} did not answer within {timeout:g}s", provider=provider) from None
        if conn is None:
            conn = await self._connect(target, deadline, provider, timeout)
        try:
            status, headers, body = await self._exchange(conn, request, head, deadline, timeout)
        except Stale:  # the keep-alive race: the server closed the socket as we reused it
            conn = await self._connect(target, deadline, provider, timeout)
            status, headers, body = await self._exchange(conn, request, head, deadline, timeout)
        if isinstance(body, Stream):
            return UpstreamResponse(status=status, headers=headers, chunks=body, close=body.close)
        return UpstreamResponse(status=status, headers=headers, body=body)

    async def aclose(self) -> None:
        """Close every socket: answers in flight fail, callers waiting for a socket find the transport closed."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._conns):
            if conn.active:
                conn.broken(ConnectionAbortedError("the transport is closed"))
            else:
                self.discard(conn)
        while self._waiters:  # a slot each: they find the transport closed when they connect
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)

    # ---- one exchange

    async def _exchange(
        self, conn: Connection, request: UpstreamRequest, head: bytes, deadline: float, timeout: float
    ) -> Result:
        waiter = conn.start(request, head, deadline, timeout)
        try:
            return await waiter
        except BaseException as exc:
            if not waiter.done() or waiter.cancelled():
                if conn.waiter is waiter:
                    conn.abandon()  # cancelled mid-answer
            elif (error := waiter.exception()) is None:  # answered as we were cancelled
                answer = waiter.result()[2]
                if isinstance(answer, Stream):
                    answer.discard()
            elif isinstance(error, Stale) and error is not exc:
                self._free_slot()  # the slot kept for a retry nobody will make
            raise

    # ---- the pool

    def _target(self, url: str) -> Target:
        if len(self._targets) >= _URL_CACHE:
            del self._targets[next(iter(self._targets))]
        target = self._targets[url] = parse_target(url)
        return target

    async def _acquire(self, key: Key, deadline: float) -> Connection | None:
        """A pooled socket for ``key``, or None: the caller holds a slot and connects. TimeoutError at the deadline."""
        idle = self._idle.get(key)
        if idle:
            now = self.loop.time()
            while idle:
                conn = idle.pop()
                if conn.idle_until > now:
                    conn.state = BUSY
                    return conn
                conn.state = BUSY
                self.discard(conn)
        waiters = self._waiters
        while waiters and waiters[0][1].done():
            waiters.popleft()
        if not waiters:
            if self._open < self._size:
                self._open += 1
                return None
            if self._evict():
                return None
        future: asyncio.Future[Connection | None] = self.loop.create_future()
        entry = (key, future)
        waiters.append(entry)
        timer = self.loop.call_at(deadline, _expire, future)
        try:
            return await future
        except BaseException:
            if not future.done() or future.cancelled() or future.exception() is not None:
                if entry in waiters:
                    waiters.remove(entry)
            elif (handed := future.result()) is not None:  # handed a socket or a slot as we gave up
                self.release(handed)
            else:
                self._free_slot()
            raise
        finally:
            timer.cancel()

    async def _connect(self, target: Target, deadline: float, provider: str, timeout: float) -> Connection:
        """A new socket in the slot the caller holds; the slot is freed if it cannot be had."""
        loop = self.loop
        try:
            if self._closed:
                raise TransportError(f"cannot reach {provider}: the transport is closed", provider=provider)
            if target.tls and self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl if target.tls else None
            async with asyncio.timeout_at(min(deadline, loop.time() + self._connect_timeout)):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, target.key),
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context else None,
                )
        except BaseException as exc:
            self._free_slot()
            if isinstance(exc, TimeoutError):
                raise TransportTimeout(f"{provider} did not answer within {timeout:g}s", provider=provider) from exc
            if isinstance(exc, OSError | ValueError):
                raise TransportError(f"cannot reach {provider}: {describe(exc)}", provider=provider) from exc
            raise
        if self._closed:  # while connecting
            self.discard(conn)
            raise TransportError(f"cannot reach {provider}: the transport is closed", provider=provider)
        self._conns.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """A socket whose answer is complete: to the first caller waiting, or to the pool."""
        conn.reused = True
        if self._closed:
            self.discard(conn)
            return
        waiters = self._waiters
        while waiters:
            key, future = waiters.popleft()
            if future.done():
                continue
            if key == conn.key:
                future.set_result(conn)
            else:  # another host waits: the socket goes, its slot does not
                self.discard(conn, keep_slot=True)
                future.set_result(None)
            return
        conn.state = IDLE
        conn.idle_until = self.loop.time() + conn.keep_alive_for
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(conn.idle_until, self._sweep)

    def discard(self, conn: Connection, *, keep_slot: bool = False) -> None:
        """Close a socket for good; its slot goes to the first caller waiting, unless ``keep_slot``."""
        if conn.state == CLOSED:
            return
        if conn.state == IDLE:
            self._idle[conn.key].remove(conn)
        conn.state = CLOSED
        conn.lost = True  # a caller it was just handed to finds it so in start()
        self._conns.discard(conn)
        if conn.transport is not None:
            conn.transport.abort()
        if not keep_slot:
            self._free_slot()

    def _free_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._open -= 1

    def _evict(self) -> bool:
        """Close the longest-idle socket (of another host: this one has none idle); its slot is the caller's."""
        oldest: Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_until < oldest.idle_until):
                oldest = conns[0]
        if oldest is None:
            return False
        self.discard(oldest, keep_slot=True)
        return True

    def _sweep(self) -> None:
        """Close idle sockets past their time, so that none is left for the server to drop under us."""
        self._sweeper = None
        now, soonest = self.loop.time(), None
        for conns in list(self._idle.values()):
            for conn in list(conns):
                if conn.idle_until <= now:
                    self.discard(conn)
                elif soonest is None or conn.idle_until < soonest:
                    soonest = conn.idle_until
        if soonest is not None and not self._closed:
            self._sweeper = self.loop.call_at(soonest, self._sweep)


def _expire(future: asyncio.Future[Connection | None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
