"""A lean Redis client for the limiter's Lua scripts: one pipelined connection, RESP2, nothing else.

Every governed call runs two scripts (admission, commit). Through ``redis.asyncio`` each call cost ~90 µs of
this process's CPU (connection pool checkout, per-command timeout scopes, its parser), ~40% of the governed
path's CPU with limits on; here one call costs ~18 µs with 32 in flight (``bench/RESULTS.md``). The savings come
from what the limiter does not need: commands from every concurrent call go out on one connection, written
together once per event-loop turn, and replies come back in order (Redis answers a connection's commands in
the order sent), so a reply completes the oldest waiting future.

Scope, on purpose: ``EVALSHA`` (falling back to ``EVAL`` once after Redis forgot the script) and ``PING``;
``redis://``, ``rediss://`` (TLS) and ``unix://`` URLs with an optional user, password and database. A lost
connection fails the calls in flight with ``RedisUnavailable`` and the next call reconnects; a reply later than
``timeout`` seconds drops the connection the same way, so a hung Redis costs a call ``timeout``, not forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["RedisUnavailable", "ReplyError", "RespClient", "Script", "encode", "parse_url"]

Reply = int | bytes | None | list[Any]


class RedisUnavailable(ConnectionError):
    """No answer from Redis: connection refused, lost, or a reply later than the timeout."""


class ReplyError(Exception):
    """Redis answered with an error (``-ERR ...``, ``-NOSCRIPT ...``): the message is Redis's."""


def encode(*parts: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    pass


class Parser:
    """Incremental RESP2 parser: ``feed`` bytes as they arrive, ``pop`` complete replies."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def pop(self) -> tuple[Reply | ReplyError] | None:
        """The next complete reply in a 1-tuple, or None until more bytes arrive."""
        start = self._pos
        try:
            value = self._value()
        except _Incomplete:
            self._pos = start
            return None
        if self._pos == len(self._buffer) or self._pos > 65_536:
            del self._buffer[: self._pos]
            self._pos = 0
        return (value,)

    def _line(self) -> bytes:
        end = self._buffer.find(b"\r\n", self._pos)
        if end < 0:
            raise _Incomplete
        line = bytes(self._buffer[self._pos : end])
        self._pos = end + 2
        return line

    def _value(self) -> Reply | ReplyError:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            end = self._pos + size
            if len(self._buffer) < end + 2:
                raise _Incomplete
            data = bytes(self._buffer[self._pos : end])
            self._pos = end + 2
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._value() for _ in range(count)]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        raise ValueError(f"not a RESP2 reply: {line[:40]!r}")


class _Connection(asyncio.Protocol):
    """One socket; futures wait in send order, replies complete them in that order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.parser = Parser()
        self.outgoing: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while self.waiting:
            got = self.parser.pop()
            if got is None:
                return
            future, _ = self.waiting.popleft()
            if not future.done():
                value = got[0]
                if isinstance(value, ReplyError):
                    future.set_exception(value)
                else:
                    future.set_result(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisUnavailable(f"connection to Redis lost ({exc or 'closed'})"))

    def fail(self, error: Exception) -> None:
        self.closed = True
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((future, time.monotonic()))
        if not self.outgoing:
            loop.call_soon(self.flush)  # every command of this loop turn leaves in one write
        self.outgoing.append(command)
        return future

    def flush(self) -> None:
        if self.outgoing and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()


def parse_url(url: str) -> dict[str, Any]:
    """Connection settings of a ``redis://``, ``rediss://`` or ``unix://`` URL; ``ValueError`` names the problem."""
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"db"})
    if unknown:  # silently dropping e.g. ssl_cert_reqs would connect differently than the operator asked
        raise ValueError(f"Redis URL option(s) {', '.join(unknown)} are not supported (only ?db=N)")
    settings: dict[str, Any] = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "db": int(query.get("db", 0)),
        "host": None,
        "port": None,
        "path": None,
        "tls": parts.scheme == "rediss",
    }
    if parts.scheme in ("redis", "rediss"):
        settings["host"] = parts.hostname or "localhost"
        settings["port"] = parts.port or 6379
        if parts.path.strip("/"):
            settings["db"] = int(parts.path.strip("/"))
    elif parts.scheme == "unix":
        settings["path"] = parts.path
    else:
        raise ValueError(f"Redis URL scheme must be redis://, rediss:// or unix://, not {parts.scheme!r}")
    return settings


class RespClient:
    """Usage::

    client = RespClient.from_url("redis://127.0.0.1:6379/0")
    admit = client.register_script(LUA)
    reply = await admit(keys=["k"], args=[1, 2])   # ReplyError for a Lua error, RedisUnavailable for no answer
    await client.aclose()
    """

    def __init__(self, settings: dict[str, Any], *, timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0, connect_timeout: float = 2.0) -> RespClient:
        return cls(parse_url(url), timeout=timeout, connect_timeout=connect_timeout)

    def register_script(self, source: str) -> Script:
        return Script(self, source)

    async def execute(self, *parts: bytes | str | int) -> Any:
        """One command's reply (int, bytes, None or a list); ``ReplyError`` or ``RedisUnavailable`` otherwise."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        return await connection.send(encode(*parts))

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._connection is not None:
            self._connection.fail(RedisUnavailable("client closed"))
            self._connection = None

    async def _connect(self) -> _Connection:
        if self._connecting is None or self._connecting.done():  # one attempt shared by every waiting call
            self._connecting = asyncio.get_running_loop().create_task(self._open())
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        settings = self._settings
        try:
            async with asyncio.timeout(self._connect_timeout):
                if settings["path"] is not None:
                    _, connection = await loop.create_unix_connection(_Connection, settings["path"])
                else:
                    context = ssl.create_default_context() if settings["tls"] else None
                    _, connection = await loop.create_connection(
                        _Connection, settings["host"], settings["port"], ssl=context
                    )  # TCP_NODELAY is the event loop's default
                handshake = []
                if settings["password"] is not None:
                    user = [settings["username"]] if settings["username"] else []
                    handshake.append(connection.send(encode("AUTH", *user, settings["password"])))
                if settings["db"]:
                    handshake.append(connection.send(encode("SELECT", settings["db"])))
                connection.flush()
                for reply in handshake:
                    await reply
        except (OSError, TimeoutError) as exc:
            raise RedisUnavailable(f"cannot connect to Redis ({type(exc).__name__}: {exc})") from None
        self._connection = connection
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = loop.create_task(self._watch(), name="alephant-redis-watchdog")
        return connection

    async def _watch(self) -> None:
        """Drop the connection when its oldest call has waited longer than the timeout (a hung Redis)."""
        while True:
            await asyncio.sleep(min(self._timeout / 4, 0.5))
            connection = self._connection
            if connection is not None and connection.waiting:
                _, sent = connection.waiting[0]
                if time.monotonic() - sent > self._timeout:
                    connection.fail(RedisUnavailable(f"Redis did not answer within {self._timeout:g} s"))


class Script:
    """A Lua script called by its SHA-1; loaded with ``EVAL`` when Redis does not know it (a restart)."""

    def __init__(self, client: RespClient, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        """The script's reply: int, bytes, None or a list of them (what its Lua returned, as RESP2 has it)."""
        try:
            return await self._client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self._client.execute("EVAL", self._source, len(keys), *keys, *args)
