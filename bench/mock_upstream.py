"""A minimal, fast OpenAI-compatible upstream for the benchmark: raw asyncio protocol on uvloop.

HTTP/1.1 with keep-alive and Content-Length request bodies, a parser that only finds the header end and the
body length, and replies prepared once per model. It answers ``POST .../chat/completions`` with a JSON
completion or, when the body asks ``"stream": true``, an SSE stream (chunked transfer encoding: six content
events, a finish event, a usage event since ``stream_options.include_usage`` is what clients send, ``[DONE]``).

A model named ``paced-<ms>`` streams its events ``<ms>`` milliseconds apart (the first one at once), so
time-to-first-token and inter-chunk gaps can be measured; any other model answers at once.

    python -m bench.mock_upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import re

import orjson
import uvloop

__all__ = ["serve"]

_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_WORDS = ("Mock", " reply", " from", " the", " bench", " upstream.")
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_DONE = b"data: [DONE]\n\n"


def _json_reply(model: str) -> bytes:
    body = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1764115200,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(_WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
        }
    )
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stream_events(model: str) -> list[bytes]:
    def event(delta: dict[str, str], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        payload = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764115200}
        payload |= {"model": model, "choices": choices}
        if usage:
            payload["usage"] = usage
        return _chunk(b"data: " + orjson.dumps(payload) + b"\n\n")

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    events = [head + event({"role": "assistant", "content": _WORDS[0]})]
    events += [event({"content": word}) for word in _WORDS[1:]]
    events.append(event({}, "stop"))
    events.append(event({}, usage={"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}))
    events.append(_chunk(_DONE) + b"0\r\n\r\n")
    return events


class _Replies:
    """Prepared replies per model name; a benchmark uses a handful of models, so this stays tiny."""

    def __init__(self) -> None:
        self._json: dict[bytes, bytes] = {}
        self._stream: dict[bytes, tuple[bytes, list[bytes]]] = {}

    def json(self, model: bytes) -> bytes:
        reply = self._json.get(model)
        if reply is None:
            reply = self._json[model] = _json_reply(model.decode())
        return reply

    def stream(self, model: bytes) -> tuple[bytes, list[bytes]]:
        reply = self._stream.get(model)
        if reply is None:
            events = _stream_events(model.decode())
            reply = self._stream[model] = (b"".join(events), events)
        return reply


class _Protocol(asyncio.Protocol):
    def __init__(self, replies: _Replies) -> None:
        self._replies = replies
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is duck-typed

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = 0
            lowered = head.lower()
            at = lowered.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lowered.find(b"\r\n", at + 17)
                length = int(lowered[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buffer) < total:
                break
            body = buffer[end + 4 : total]
            buffer = buffer[total:]
            self._answer(head, body)
        self._buffer = buffer

    def _answer(self, head: bytes, body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        line = head[: head.find(b"\r\n")]
        if b"/chat/completions" not in line:
            transport.write(_NOT_FOUND)
            return
        found = _MODEL.search(body)
        model = found.group(1) if found else b"bench"
        if _STREAM.search(body) is None:
            transport.write(self._replies.json(model))
            return
        whole, events = self._replies.stream(model)
        paced = model.find(b"paced-")
        if paced < 0:
            transport.write(whole)
            return
        gap = int(model[paced + 6 :]) / 1000
        asyncio.get_running_loop().create_task(_paced(transport, events, gap))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def _paced(transport: asyncio.Transport, events: list[bytes], gap: float) -> None:
    transport.write(events[0])
    for event in events[1:]:
        await asyncio.sleep(gap)
        if transport.is_closing():
            return
        transport.write(event)


async def serve(host: str, port: int) -> None:
    replies = _Replies()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Protocol(replies), host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
