"""The HTTP/1.1 upstream transport (``providers.http1``) against servers whose bytes the tests write.

What the gateway relies on: every framing an upstream may use, keep-alive reuse within ``pool_size`` sockets,
the keep-alive race retried once and nothing else retried, timeouts that name what was late, streams that
arrive as sent and never reuse an abandoned socket, decoded gzip, refused header smuggling, TLS, and a
cancelled caller leaving a closed socket behind. Each test runs on asyncio and on uvloop.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import itertools
import re
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import TransportError, TransportTimeout
from providers.http1 import Http1Transport
from providers.http1.connection import Connection
from providers.http1.stream import HIGH_WATER
from providers.types import UpstreamRequest, UpstreamResponse
from tests.conftest import BOTH_LOOPS
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture(params=BOTH_LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture
async def transport() -> AsyncIterator[Http1Transport]:
    made = Http1Transport(connect_timeout=1.0, stream_idle_timeout=2.0, pool_size=8)
    yield made
    await made.aclose()


class Peer:
    """One accepted connection, as the server sees it."""

    def __init__(self, server: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int):
        self.server, self.reader, self.writer, self.index = server, reader, writer, index

    async def request(self) -> bytes | None:
        """The next request, head and body; None once the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            found = re.search(rb"\r\ncontent-length: (\d+)\r\n", head, re.IGNORECASE)
            body = await self.reader.readexactly(int(found.group(1)) if found else 0)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self.server.closing:
                self.server.eof.append(self.index)
            return None
        self.server.requests.append((self.index, head + body))
        return head + body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Close with a TCP reset, as a crashed or overloaded server does."""
        self.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def until_eof(self) -> None:
        while await self.request() is not None:
            pass


class Upstream:
    """A raw asyncio HTTP server on 127.0.0.1 running ``handle(peer)`` per connection; counts what it sees."""

    def __init__(self, handle: Callable[[Peer], Awaitable[None]], *, tls: ssl.SSLContext | None = None) -> None:
        self.handle, self.tls = handle, tls
        self.accepts = 0
        self.requests: list[tuple[int, bytes]] = []  # (connection index, request bytes)
        self.eof: list[int] = []  # connections the client closed
        self.closing = False
        self.handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    def url(self, path: str = "/v1/x", *, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closing = True
        self.server.close()
        for writer in self.handlers.values():
            writer.transport.abort()  # handlers end as their reads fail (cancelling them makes uvloop log)
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers[task] = writer
        index, self.accepts = self.accepts, self.accepts + 1
        try:
            await self.handle(Peer(self, reader, writer, index))
        except (ConnectionError, asyncio.IncompleteReadError, RuntimeError):
            pass  # the client went away (uvloop raises RuntimeError writing to a closed transport)
        finally:
            writer.close()


def replying(*answers: bytes) -> Callable[[Peer], Awaitable[None]]:
    """A keep-alive server: the n-th request (over all connections) gets ``answers[n]`` (the last one after)."""

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            n = len(peer.server.requests) - 1
            await peer.send(answers[min(n, len(answers) - 1)])

    return handle


def post(
    url: str, body: bytes = b"{}", *, stream: bool = False, method: str = "POST", headers: dict[str, str] | None = None
) -> UpstreamRequest:
    return UpstreamRequest(method=method, url=url, headers=headers or {}, body=body, stream=stream, provider_id="up")


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"  # a stream's head and first chunk


async def stream_after_first(transport: Http1Transport, up: Upstream) -> UpstreamResponse:
    """A streamed answer (the upstream sends ``STREAM_HEAD``) with its first chunk already read."""
    response = await transport.send(post(up.url(), stream=True), timeout=5)
    assert response.chunks is not None
    assert await response.chunks.__anext__() == b"first"
    return response


async def read_all(response: UpstreamResponse) -> bytes:
    assert response.chunks is not None and response.body is None
    data = b"".join([piece async for piece in response.chunks])
    await response.aclose()
    return data


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


# ---- framing


async def test_a_content_length_answer_and_its_headers(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Many: a\r\nx-many: b\r\nContent-Type: text/x\r\n\r\nhello"
    async with Upstream(replying(answer)) as up:
        response = await transport.send(post(up.url()), timeout=2)
    assert (response.status, response.body, response.chunks) == (201, b"hello", None)
    assert response.headers == {"content-length": "5", "x-many": "a, b", "content-type": "text/x"}


async def test_the_request_bytes(transport: Http1Transport) -> None:
    async with Upstream(replying(OK)) as up:
        headers = {"Authorization": "Bearer k", "Host": "evil", "Connection": "close", "Transfer-Encoding": "chunked"}
        request = UpstreamRequest(method="POST", url=up.url("/v1/x?a=1 2#frag"), headers=headers, body=b"{}")
        await transport.send(request, timeout=2)
        await transport.send(post(up.url("/"), b"", headers={"accept-encoding": "identity"}), timeout=2)
        get = UpstreamRequest(method="GET", url=up.url("/v1/models"), headers={"accept-encoding": "identity"}, body=b"")
        await transport.send(get, timeout=2)
    assert (
        up.requests[0][1]
        == (
            f"POST /v1/x?a=1%202 HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\nAuthorization: Bearer k\r\n"
            "Accept-Encoding: gzip, deflate\r\nContent-Length: 2\r\n\r\n{}"
        ).encode()
    )
    assert (
        up.requests[1][1]
        == (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\naccept-encoding: identity\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    # A GET without a body carries no Content-Length (RFC 9110 §8.6; some servers refuse one).
    assert (
        up.requests[2][1]
        == (f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\naccept-encoding: identity\r\n\r\n").encode()
    )


async def test_credentials_in_the_url_are_basic_auth_unless_the_caller_sends_its_own(
    transport: Http1Transport,
) -> None:
    async with Upstream(replying(OK)) as up:
        url = f"http://me:p%40ss@127.0.0.1:{up.port}/v1"
        await transport.send(post(url), timeout=2)
        await transport.send(post(url, headers={"authorization": "Bearer k"}), timeout=2)
    assert b"\r\nAuthorization: Basic bWU6cEBzcw==\r\n" in up.requests[0][1]  # me:p@ss
    assert b"Basic" not in up.requests[1][1] and b"\r\nauthorization: Bearer k\r\n" in up.requests[1][1]


async def test_a_chunked_answer(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"hel", b"lo")
    async with Upstream(replying(answer)) as up:
        assert (await transport.send(post(up.url()), timeout=2)).body == b"hello"
        assert (await transport.send(post(up.url()), timeout=2)).body == b"hello"
    assert up.accepts == 1


async def test_an_answer_read_until_the_server_closes() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await peer.send(b"close")

    async with Upstream(handle) as up:
        transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=8)
        assert (await transport.send(post(up.url()), timeout=2)).body == b"until close"
        assert (await transport.send(post(up.url()), timeout=2)).body == b"until close"
        await transport.aclose()
    assert up.accepts == 2, "a read-until-close socket is never pooled"


@pytest.mark.parametrize(
    ("answer", "pooled"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", False),  # more than was asked
    ],
    ids=["204", "304", "connection-close", "http1.0", "http1.0-keep-alive", "stray-bytes"],
)
async def test_bodiless_answers_and_which_sockets_are_pooled(
    transport: Http1Transport, answer: bytes, pooled: bool
) -> None:
    async with Upstream(replying(answer)) as up:
        for _ in range(2):
            response = await transport.send(post(up.url()), timeout=2)
            assert response.body == b""
    assert up.accepts == (1 if pooled else 2)


async def test_an_interim_100_continue_is_skipped(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with Upstream(replying(answer)) as up:
        response = await transport.send(post(up.url()), timeout=2)
        assert (response.status, response.body, dict(response.headers)) == (200, b"ok", {"content-length": "2"})
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
    assert up.accepts == 1


async def test_a_head_answer_has_no_body_and_the_socket_is_reused(transport: Http1Transport) -> None:
    async with Upstream(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", OK)) as up:
        response = await transport.send(post(up.url(), b"", method="HEAD"), timeout=2)
        assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "10")
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
    assert up.accepts == 1


def _answer_pieces(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    edges = [0, *sorted({cut for cut in cuts if 0 < cut < len(data)}), len(data)]
    return (data[a:b] for a, b in itertools.pairwise(edges))


def _parse(wire: bytes, cuts: list[int], *, stream: bool) -> tuple[dict[str, str], bytes, bool]:
    """Feed an answer to a connection in the pieces ``cuts`` makes: its headers, body, and whether it was pooled."""

    class Sink:
        def writelines(self, data: object) -> None:
            pass

        def abort(self) -> None:
            pass

    async def run() -> tuple[dict[str, str], bytes, bool]:
        transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=1)
        transport._open = 1  # the slot the connection holds
        conn = Connection(transport, ("http", "h", 80))
        conn.connection_made(Sink())  # type: ignore[arg-type]
        waiter = conn.start(post("http://h/", b"", stream=stream), b"", transport.loop.time() + 5, 5)
        for piece in _answer_pieces(wire, cuts):
            conn.data_received(piece)
        _, headers, body = await waiter
        if not isinstance(body, bytes):
            body = b"".join([piece async for piece in body])
        return headers, body, bool(transport._idle.get(conn.key))

    return asyncio.run(run())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=30), max_size=6),
    st.lists(st.integers(min_value=0, max_value=300), max_size=12),
    st.booleans(),
    st.booleans(),
)
def test_a_chunked_answer_split_anywhere(pieces: list[bytes], cuts: list[int], stream: bool, trailer: bool) -> None:
    end = b"0\r\nX-Trailer: t\r\n\r\n" if trailer else b"0\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + end
    wire = b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    headers, got, pooled = _parse(wire, cuts, stream=stream)
    assert got == b"".join(pieces)
    assert headers == {"x-a": "1", "transfer-encoding": "chunked"}, "a trailer is not a header"
    assert pooled


def test_an_answer_split_at_every_byte() -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n" + chunked(b"data: 1\n\n", b"data: 2\n\n")
    for cut in range(1, len(wire)):
        for stream in (False, True):
            assert _parse(wire, [cut], stream=stream) == (
                {"transfer-encoding": "chunked", "x-b": "2"},
                b"data: 1\n\ndata: 2\n\n",
                True,
            )


# ---- the pool


async def test_sequential_requests_share_one_socket(transport: Http1Transport) -> None:
    async with Upstream(replying(OK)) as up:
        for _ in range(20):
            assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
    assert up.accepts == 1


async def test_concurrent_requests_open_at_most_pool_size_sockets() -> None:
    open_now = peak = 0

    async def handle(peer: Peer) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while await peer.request() is not None:
                await asyncio.sleep(0.01)
                await peer.send(OK)
        finally:
            open_now -= 1

    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=4)
    async with Upstream(handle) as up:
        responses = await asyncio.gather(*(transport.send(post(up.url()), timeout=5) for _ in range(60)))
        await transport.aclose()
    assert [r.body for r in responses] == [b"ok"] * 60
    assert up.accepts == 4 and peak == 4


async def test_the_socket_used_last_is_reused_first(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await asyncio.sleep(0.05 if len(peer.server.requests) <= 3 else 0)
            await peer.send(OK)

    async with Upstream(handle) as up:
        await asyncio.gather(*(transport.send(post(up.url()), timeout=2) for _ in range(3)))
        for _ in range(6):
            await transport.send(post(up.url()), timeout=2)
    assert up.accepts == 3 and len({index for index, _ in up.requests[3:]}) == 1, "the others can expire unused"


async def test_the_pool_counts_idle_sockets_of_every_host() -> None:
    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=1)
    async with Upstream(replying(OK)) as first, Upstream(replying(OK)) as second:
        for up in (first, second, first, second):
            assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        await transport.aclose()
    assert (first.accepts, second.accepts) == (2, 2), "an idle socket of another host makes room"


async def test_waiting_for_a_socket_counts_against_the_timeout() -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await asyncio.sleep(0.5)
            await peer.send(OK)

    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=1)
    async with Upstream(handle) as up:
        slow = asyncio.ensure_future(transport.send(post(up.url()), timeout=2))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportTimeout, match=r"^up did not answer within 0.2s$"):
            await transport.send(post(up.url()), timeout=0.2)
        assert asyncio.get_running_loop().time() - started < 0.4
        assert (await slow).body == b"ok"
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        await transport.aclose()
    assert up.accepts == 1


async def test_a_socket_the_server_closes_while_idle_leaves_the_pool(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(OK)  # then closes: keep-alive was never refused

    async with Upstream(handle) as up:
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        await asyncio.sleep(0.1)
        assert not any(transport._idle.values()) and transport._open == 0
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
    assert up.accepts == 2 and len(up.requests) == 2


async def test_keep_alive_timeout_is_honoured(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1, max=100\r\nContent-Length: 2\r\n\r\nok"
    async with Upstream(replying(answer)) as up:
        await transport.send(post(up.url()), timeout=2)
        await transport.send(post(up.url()), timeout=2)
        await asyncio.sleep(0.7)  # past what the client keeps (half of 1 s), before the server would close
        assert up.eof == [0], "closed at rest, not only when next wanted"
        await transport.send(post(up.url()), timeout=2)
    assert up.accepts == 2


@pytest.mark.parametrize("how", ["reset", "close"])
async def test_a_reused_socket_dying_before_any_answer_byte_is_retried_once(
    transport: Http1Transport, how: str
) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            if peer.index == 0 and len(peer.server.requests) == 2:
                peer.reset() if how == "reset" else peer.writer.close()
                return
            await peer.send(OK)

    async with Upstream(handle) as up:
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
    assert up.accepts == 2 and [index for index, _ in up.requests] == [0, 0, 1]


async def test_a_socket_dying_after_an_answer_byte_is_not_retried(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            if len(peer.server.requests) == 2:
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                await asyncio.sleep(0.05)
                peer.reset()
                return
            await peer.send(OK)

    async with Upstream(handle) as up:
        await transport.send(post(up.url()), timeout=2)
        with pytest.raises(TransportError, match=r"^up closed the connection: ") as failed:
            await transport.send(post(up.url()), timeout=2)
    assert not isinstance(failed.value, TransportTimeout)
    assert up.accepts == 1 and len(up.requests) == 2


async def test_a_new_socket_dying_before_any_answer_byte_is_not_retried(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.reset()

    async with Upstream(handle) as up:
        with pytest.raises(TransportError, match=r"^cannot reach up: "):
            await transport.send(post(up.url()), timeout=2)
    assert up.accepts == 1 and len(up.requests) == 1


# ---- timeouts and failures


async def test_no_answer_is_a_timeout(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        await peer.until_eof()

    async with Upstream(handle) as up:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportTimeout, match=r"^up did not answer within 0.3s$"):
            await transport.send(post(up.url()), timeout=0.3)
        assert 0.25 < asyncio.get_running_loop().time() - started < 1.0
        await asyncio.sleep(0.05)
    assert up.eof == [0], "the late socket is closed"


async def test_a_silent_stream_is_a_timeout_naming_the_idle_seconds() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(STREAM_HEAD)
        await peer.until_eof()

    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=0.2, pool_size=8)
    async with Upstream(handle) as up:
        response = await stream_after_first(transport, up)
        assert response.chunks is not None
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportTimeout, match=r"^up sent nothing for 0.2s mid-stream$"):
            await response.chunks.__anext__()
        assert 0.15 < asyncio.get_running_loop().time() - started < 0.6
        await response.aclose()
        await transport.aclose()


async def test_nothing_listening_cannot_be_reached(transport: Http1Transport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError, match=r"^cannot reach up: ") as failed:
        await transport.send(post(f"http://127.0.0.1:{port}/v1/x?key=SECRET"), timeout=2)
    assert "SECRET" not in str(failed.value)
    assert not isinstance(failed.value, TransportTimeout)


async def test_a_malformed_answer(transport: Http1Transport) -> None:
    async with Upstream(replying(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")) as up:
        with pytest.raises(TransportError, match=r"^cannot reach up: malformed response \("):
            await transport.send(post(up.url()), timeout=2)


async def test_other_schemes_are_refused(transport: Http1Transport) -> None:
    with pytest.raises(TransportError, match="unsupported URL scheme 'ftp'"):
        await transport.send(post("ftp://example.com/x?key=SECRET"), timeout=2)


@pytest.mark.parametrize(
    "headers",
    [{"X-Key": "secret\r\nX-Smuggled: 1"}, {"X-Key": "secret\nX-Smuggled: 1"}, {"X-Key\r\nX-Smuggled": "secret"}],
)
async def test_a_line_break_in_a_header_is_refused(transport: Http1Transport, headers: dict[str, str]) -> None:
    async with Upstream(replying(OK)) as up:
        with pytest.raises(TransportError, match="CR or LF") as refused:
            await transport.send(UpstreamRequest(method="POST", url=up.url(), headers=headers, body=b""), timeout=2)
    assert "secret" not in str(refused.value) and up.accepts == 0


# ---- streams


async def test_stream_chunks_arrive_as_sent(transport: Http1Transport) -> None:
    first_seen = asyncio.Event()

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await asyncio.sleep(0.05)  # the client waits for the first chunk
        await peer.send(b"6\r\nfirst \r\n")
        await first_seen.wait()  # the rest only once the client has the first chunk
        await peer.send(b"4\r\nlast\r\n0\r\n\r\n")
        await peer.until_eof()

    async with Upstream(handle) as up:
        response = await transport.send(post(up.url(), stream=True), timeout=2)
        assert response.chunks is not None and response.body is None
        assert await response.chunks.__anext__() == b"first "
        first_seen.set()
        assert await read_all(response) == b"last"


async def test_an_abandoned_stream_closes_its_socket(transport: Http1Transport) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"3\r\none\r\n")
            if peer.index == 0:
                await peer.until_eof()
                return
            await peer.send(b"0\r\n\r\n")

    async with Upstream(handle) as up:
        response = await transport.send(post(up.url(), stream=True), timeout=2)
        assert response.chunks is not None
        assert await response.chunks.__anext__() == b"one"
        await response.aclose()
        assert await read_all(await transport.send(post(up.url(), stream=True), timeout=2)) == b"one"
        await asyncio.sleep(0.05)
    assert up.accepts == 2 and up.eof == [0]


async def test_a_stream_read_to_its_end_gives_its_socket_back(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"data: 1\n\n", b"data: [DONE]\n\n")
    async with Upstream(replying(answer)) as up:
        for _ in range(3):
            assert await read_all(await transport.send(post(up.url(), stream=True), timeout=2)) == (
                b"data: 1\n\ndata: [DONE]\n\n"
            )
    assert up.accepts == 1


async def test_an_error_answer_to_a_stream_request_is_buffered(transport: Http1Transport) -> None:
    answer = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"{}")
    async with Upstream(replying(answer)) as up:
        response = await transport.send(post(up.url(), stream=True), timeout=2)
    assert (response.status, response.body, response.chunks, response.headers["retry-after"]) == (429, b"{}", None, "1")


async def test_a_slow_reader_stops_the_socket_being_read() -> None:
    size = 48 * 1024 * 1024  # far more than the kernel buffers on both sides
    writers: list[asyncio.StreamWriter] = []

    async def handle(peer: Peer) -> None:
        await peer.request()
        writers.append(peer.writer)
        peer.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + bytes(size))
        await peer.until_eof()

    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=0.2, pool_size=8)
    async with Upstream(handle) as up:
        response = await transport.send(post(up.url(), stream=True), timeout=5)
        assert response.chunks is not None
        got = len(await response.chunks.__anext__())
        await asyncio.sleep(0.5)  # a slow consumer, longer than the idle timeout: our pause is not their silence
        assert writers[0].transport.get_write_buffer_size() > 0, "the server could not send everything"
        async for piece in response.chunks:
            assert len(piece) <= 2 * 256 * 1024
            got += len(piece)
        await response.aclose()
        await transport.aclose()
    assert got == size


async def test_a_pause_of_ours_is_not_the_servers_silence() -> None:
    slept, resumed = asyncio.Event(), asyncio.Event()
    burst = HIGH_WATER + 1  # reading pauses only once all of it is in: nothing is left in the kernel

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(STREAM_HEAD)
        await slept.wait()
        await peer.send(b"%x\r\n%s\r\n" % (burst, bytes(burst)))
        await resumed.wait()
        await asyncio.sleep(0.1)  # well within the idle timeout of when the client reads again
        await peer.send(b"4\r\nlast\r\n0\r\n\r\n")
        await peer.until_eof()

    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=0.3, pool_size=8)
    async with Upstream(handle) as up:
        response = await stream_after_first(transport, up)
        assert response.chunks is not None
        slept.set()
        await asyncio.sleep(0.6)  # twice the idle timeout since the burst's last byte
        assert len(await response.chunks.__anext__()) == burst
        resumed.set()
        assert await read_all(response) == b"last"
        await transport.aclose()


async def test_gzip_and_deflate_bodies_are_decoded(transport: Http1Transport) -> None:
    text = b'{"choices": []}' * 50
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encoded = {"gzip": gzip.compress(text), "deflate": zlib.compress(text), "raw": raw.compress(text) + raw.flush()}
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\nX-A: 1\r\n\r\n%s"
        % (b"gzip" if name == "gzip" else b"deflate", len(data), data)
        for name, data in encoded.items()
    ]
    async with Upstream(replying(*answers)) as up:
        for _ in answers:
            response = await transport.send(post(up.url()), timeout=2)
            assert response.body == text and response.headers == {"x-a": "1"}


async def test_a_gzip_stream_is_decoded_as_it_arrives(transport: Http1Transport) -> None:
    events = [b"data: %d\n\n" % n for n in range(40)]
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    pieces = [compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) for event in events]
    pieces.append(compressor.flush())
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*pieces)
    async with Upstream(replying(answer)) as up:
        response = await transport.send(post(up.url(), stream=True), timeout=2)
        assert "content-encoding" not in response.headers
        assert await read_all(response) == b"".join(events)
        assert await read_all(await transport.send(post(up.url(), stream=True), timeout=2)) == b"".join(events)
    assert up.accepts == 1


async def test_a_broken_gzip_body(transport: Http1Transport) -> None:
    async with Upstream(replying(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope")) as up:
        with pytest.raises(TransportError, match=r"^up closed the connection: malformed response \(.*decompress"):
            await transport.send(post(up.url()), timeout=2)


# ---- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


async def test_https_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    client = ssl.create_default_context(cafile=str(certificate[0]))
    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=8, ssl_context=client)
    async with Upstream(replying(OK), tls=_server_tls(certificate)) as up:
        for host in ("127.0.0.1", "localhost", "127.0.0.1"):
            assert (await transport.send(post(up.url(host=host)), timeout=2)).body == b"ok"
        await transport.aclose()
    assert up.accepts == 2 and up.requests[1][1].startswith(b"POST /v1/x HTTP/1.1\r\nHost: localhost:")


async def test_https_verifies_with_the_default_context(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Upstream(replying(OK), tls=_server_tls(certificate)) as up:
        transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=8)
        with pytest.raises(TransportError, match=r"^cannot reach up: .*CERTIFICATE_VERIFY_FAILED"):
            await transport.send(post(up.url()), timeout=2)
        await transport.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # as the stdlib honours it
        transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=8)
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        await transport.aclose()


# ---- cancellation and closing


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cancelled_caller_leaves_a_closed_socket(transport: Http1Transport, stream: bool) -> None:
    midway = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            if peer.index == 0:
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                midway.set()
                await peer.until_eof()
                return
            await peer.send(OK)

    async with Upstream(handle) as up:
        sending = asyncio.ensure_future(transport.send(post(up.url(), stream=stream), timeout=5))
        await midway.wait()
        await asyncio.sleep(0.05)
        if stream:  # the head is in: the caller is reading the body
            response = await sending
            assert response.chunks is not None
            reading = asyncio.ensure_future(read_all(response))
            await asyncio.sleep(0.05)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
        else:
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
        assert (await transport.send(post(up.url()), timeout=2)).body == b"ok"
        await asyncio.sleep(0.05)
        assert transport._open == 1 and transport._conns == {transport._idle[("http", "127.0.0.1", up.port)][0]}
    assert up.eof == [0] and up.accepts == 2


async def test_aclose_closes_pooled_sockets_and_refuses_more() -> None:
    transport = Http1Transport(connect_timeout=1, stream_idle_timeout=2, pool_size=8)
    async with Upstream(replying(OK)) as up:
        await asyncio.gather(*(transport.send(post(up.url()), timeout=2) for _ in range(3)))
        await transport.aclose()
        await asyncio.sleep(0.05)
        assert sorted(up.eof) == list(range(up.accepts))
        with pytest.raises(TransportError, match=r"^cannot reach up: the transport is closed$"):
            await transport.send(post(up.url()), timeout=2)


# ---- against the fake OpenAI (an aiohttp server)


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _chat(fake: FakeOpenAI, *, stream: bool = False, **faults: str) -> UpstreamRequest:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"stream":%s}' % (
        b"true" if stream else b"false"
    )
    headers = {"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json"}
    headers |= {f"x-fake-{name.replace('_', '-')}": value for name, value in faults.items()}
    return post(f"{fake.base_url}/chat/completions", body, stream=stream, headers=headers)


async def test_the_fake_openai(transport: Http1Transport, fake_openai: FakeOpenAI) -> None:
    response = await transport.send(_chat(fake_openai), timeout=5)
    assert response.status == 200 and b"fake reply to: hello there" in (response.body or b"")
    streamed = await read_all(await transport.send(_chat(fake_openai, stream=True), timeout=5))
    assert streamed.count(b"data: ") > 3 and streamed.endswith(b"data: [DONE]\n\n")
    failed = await transport.send(_chat(fake_openai, stream=True, status="503"), timeout=5)
    assert failed.status == 503 and failed.chunks is None and b"injected" in (failed.body or b"")
    assert fake_openai.last_request.headers["authorization"] == f"Bearer {fake_openai.api_key}"


async def test_the_fake_openai_dropping_connections(transport: Http1Transport, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(TransportError, match=r"^cannot reach up: "):
        await transport.send(_chat(fake_openai, close="1"), timeout=5)
    response = await transport.send(_chat(fake_openai, stream=True, close_after="2"), timeout=5)
    with pytest.raises(TransportError, match=r"^up broke the stream: "):
        await read_all(response)
    await response.aclose()
    with pytest.raises(TransportTimeout, match=r"^up did not answer within 0.2s$"):
        await transport.send(_chat(fake_openai, delay="1"), timeout=0.2)
