"""A lean HTTP/1.1 client transport: the raw asyncio Protocol API, httptools (llhttp) parsing, a keep-alive pool.

Why: under load ~30% of the gateway's CPU was aiohttp's client (per-request timeout objects, connector
bookkeeping, request building, its stream reader). The gateway needs little of it, so this does only that:
one request at a time per socket, the answer parsed by llhttp in C, one ``loop.call_at`` handle as the
request's deadline (~1 µs on uvloop; an ``asyncio.timeout`` scope costs ~4 µs), no task per request.
Measured against ``bench.mock_upstream`` with 32 concurrent clients on uvloop, client CPU per request:
~15 µs here against ~72 µs through aiohttp (JSON), ~22 µs against ~89 µs (an SSE stream).

Scope, on purpose:

- ``http://`` and ``https://`` (one default TLS context per transport, honouring ``SSL_CERT_FILE`` as the
  stdlib does); each URL is split once and cached; credentials in a URL become ``Authorization: Basic``.
- Framing: Content-Length, chunked, read-until-close, no body for HEAD/204/304; interim 1xx answers are
  skipped. gzip/deflate bodies are decoded (streams too) and their content-encoding/-length headers dropped.
- Pool: keep-alive sockets per (scheme, host, port), reused last-in first-out; at most ``pool_size`` sockets
  in all (in use and idle). A caller beyond that waits its turn (first come, first served) within its
  timeout; an idle socket of another host is closed to make room. A socket the server closes while idle
  leaves the pool at once. An idle socket is kept ``wire.IDLE_CAP`` seconds, or a second less than the server's
  ``Keep-Alive: timeout=N``.
- Retry: only the keep-alive race. A reused socket that is reset or closed before a single byte of the
  answer is retried once, on a new socket; never after an answer byte, never a new socket.
- Timeouts: ``timeout`` bounds connect + send + the response head (and, buffered, the whole body); a
  connect also within ``connect_timeout``; a stream's body within ``stream_idle_timeout`` between chunks.
- A caller cancelled mid-exchange (a client disconnect) closes the socket: it is never pooled.
"""

from .pool import Http1Transport

__all__ = ["Http1Transport"]
