"""The AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded incrementally.

Bedrock's ConverseStream answers with binary messages, not SSE. Each message is::

    prelude   total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes (uint32 BE)
    headers   repeated: name length (uint8) | name (UTF-8) | value type (uint8) | value
    payload   total length - headers length - 16 bytes (JSON, for Bedrock)
    trailer   CRC32 of every byte before it (uint32 BE)

The transport hands over bytes in arbitrary splits, so the decoder buffers until a whole message is in and
checks both CRCs. A bad CRC or an impossible length means the stream is corrupt: there is no way to find the
next message boundary again, so the decoder raises and the caller ends the stream with an error.

Example::

    decoder = EventStreamDecoder()
    for message in decoder.feed(chunk):
        message.headers[":event-type"], message.payload
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
import zlib

__all__ = ["EventStreamDecoder", "EventStreamError", "Message"]

_PRELUDE = struct.Struct(">III")
_CRC = struct.Struct(">I")
_MIN_MESSAGE = _PRELUDE.size + _CRC.size  # 16: a message with no headers and no payload
_MAX_MESSAGE = 16 * 1024 * 1024  # the protocol's limits: 16 MiB a message, 128 KiB of headers
_MAX_HEADERS = 128 * 1024

HeaderValue = bool | int | bytes | str | uuid.UUID


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad CRC, impossible length, unknown header type)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes


# Header value types by their type byte: a fixed-size struct, or a uint16 length prefix (bytes, string).
_INTS = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i"), 5: struct.Struct(">q")}
_TIMESTAMP = 8  # int64 milliseconds since the epoch; kept as the int
_UUID = 9
_LENGTH = struct.Struct(">H")


def _headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(data)
    try:
        while pos < end:
            name_length = data[pos]
            name = data[pos + 1 : pos + 1 + name_length].decode("utf-8")
            pos += 1 + name_length
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INTS:
                fmt = _INTS[kind]
                (value,) = fmt.unpack_from(data, pos)
                pos += fmt.size
            elif kind == _TIMESTAMP:
                (value,) = _INTS[5].unpack_from(data, pos)
                pos += 8
            elif kind == _UUID:
                value = uuid.UUID(bytes=data[pos : pos + 16])
                pos += 16
            elif kind in (6, 7):
                (length,) = _LENGTH.unpack_from(data, pos)
                raw = data[pos + 2 : pos + 2 + length]
                value = raw.decode("utf-8") if kind == 7 else raw
                pos += 2 + length
            else:
                raise EventStreamError(f"unknown header value type {kind}")
            headers[name] = value
    except EventStreamError:
        raise
    except (IndexError, struct.error, ValueError) as exc:  # truncated values, bad UTF-8, short UUIDs
        raise EventStreamError(f"malformed headers: {exc}") from None
    if pos != end:
        raise EventStreamError("headers overrun their declared length")
    return headers


class EventStreamDecoder:
    """Turns bytes in any split into whole, CRC-checked messages."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still waiting for the rest."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        pos = 0
        while len(buffer) - pos >= _PRELUDE.size:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, pos)
            if zlib.crc32(buffer[pos : pos + 8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if not _MIN_MESSAGE <= total <= _MAX_MESSAGE or headers_length > min(total - _MIN_MESSAGE, _MAX_HEADERS):
                raise EventStreamError(f"impossible message length {total} (headers {headers_length})")
            if len(buffer) - pos < total:
                break
            message = bytes(buffer[pos : pos + total])  # one copy per message; no views pin the buffer
            pos += total
            (message_crc,) = _CRC.unpack_from(message, total - _CRC.size)
            if zlib.crc32(message[: total - _CRC.size]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            payload_start = _PRELUDE.size + headers_length
            messages.append(
                Message(_headers(message[_PRELUDE.size : payload_start]), message[payload_start : total - _CRC.size])
            )
        if pos:
            del buffer[:pos]
        return messages
