"""A stream's events that arrive together leave together: one upstream read, one chunk to the client.

Each chunk the gateway relays costs a socket write and a pass through every wrapper of the stream (record,
limits, attempts, ingress translation); relaying event by event made a nine-event answer nine writes. The
upstream here is a raw socket server that sends its whole SSE answer in one write, and the client reads the
gateway's chunked framing off a raw socket, so the test sees the chunks as they were written.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway

WORDS = ["Hello", " there", ",", " how", " are", " you", "?"]


def _sse_answer() -> bytes:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def event(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

    events = [event({"role": "assistant", "content": ""})] + [event({"content": w}) for w in WORDS]
    events.append(event({}, "stop"))
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    body = b"".join(events)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body)
    return head + body


class OneWriteUpstream:
    """Answers every request on a connection with the whole SSE answer in a single ``sendall``."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = _sse_answer()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                head, sep, rest = buffer.partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if len(rest) < length:
                    continue
                buffer = rest[length:]
                conn.sendall(self.answer)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    upstream = OneWriteUpstream()
    providers = {"batch": {"base_url": f"http://127.0.0.1:{upstream.port}/v1", "models": ["m"]}}
    with running_gateway(Path(tmp_path_factory.mktemp("batch")), providers=providers) as gateway:
        yield gateway
    upstream.sock.close()


def _chunks(port: int, path: str, body: dict[str, object]) -> list[bytes]:
    """The chunked body's chunks, as the gateway framed them."""
    payload = orjson.dumps(body)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


def test_events_read_together_are_relayed_as_one_chunk(gw: Gateway) -> None:
    port = int(gw.base_url.rsplit(":", 1)[1])
    chunks = _chunks(
        port,
        "/v1/chat/completions",
        {"model": "batch/m", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
    )
    text = b"".join(chunks)
    assert text.count(b"data: ") == len(WORDS) + 3  # role, words, finish, [DONE] (usage not asked for)
    # One read upstream carried everything; at most the read split and the translator's end add a chunk.
    assert len(chunks) <= 2, [c[:40] for c in chunks]


def test_translated_events_read_together_are_relayed_as_one_chunk(gw: Gateway) -> None:
    port = int(gw.base_url.rsplit(":", 1)[1])
    body = {"model": "batch/m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    chunks = _chunks(port, "/v1/messages", body)
    text = b"".join(chunks)
    assert text.count(b"event: content_block_delta") == len([w for w in WORDS if w])
    assert b"event: message_stop" in text
    assert len(chunks) <= 2, [c[:40] for c in chunks]
