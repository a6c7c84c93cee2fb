"""The request side of the wire: what an upstream URL means (split once), the request head, and what the server
says about keeping its socket."""

from __future__ import annotations

import base64
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

import httptools

from ..types import UpstreamRequest

__all__ = ["IDLE_CAP", "Key", "Stale", "Target", "describe", "idle_seconds", "parse_target", "request_head"]

IDLE_CAP = 60.0  # the server says when it drops idle sockets, or its FIN does; the retry covers the race
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})  # ours to write
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_CONTENT = frozenset(
    {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"}
)  # methods whose empty request carries no Content-Length (RFC 9110 §8.6)
_SAFE = "/?:@!$&'()*+,;=-._~%"  # quote() keeps these, so an already-encoded URL goes out unchanged

Key = tuple[str, str, int]


class Stale(Exception):
    """A reused socket died before any answer byte: the request may be sent again on a new one."""


class Target(NamedTuple):
    """What one URL string means on the wire, computed once."""

    key: Key
    host: str
    port: int
    tls: bool
    line: str  # " /path?query HTTP/1.1\r\nHost: host\r\n", the method goes in front
    auth: str  # "Authorization: Basic ...\r\n" from credentials in the URL, or ""


def parse_target(url: str) -> Target:
    """``ValueError`` naming the problem for a URL this transport cannot use (never quoting the URL)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme {scheme!r} (http:// and https:// only)")
    host = parts.hostname
    if not host:
        raise ValueError("no host in the URL")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    port = parts.port or _DEFAULT_PORTS[scheme]
    name = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        name = f"{name}:{port}"
    path = quote(parts.path or "/", safe=_SAFE) + (f"?{quote(parts.query, safe=_SAFE)}" if parts.query else "")
    auth = ""
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("latin-1")
        auth = f"Authorization: Basic {base64.b64encode(secret).decode('ascii')}\r\n"
    return Target((scheme, host, port), host, port, scheme == "https", f" {path} HTTP/1.1\r\nHost: {name}\r\n", auth)


def request_head(request: UpstreamRequest, target: Target) -> bytes:
    """The request head; ``ValueError`` for a header that would smuggle a line of its own."""
    fields = []
    encoding = auth = False
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in _FRAMING:
            continue
        if lowered == "accept-encoding":
            encoding = True
        elif lowered == "authorization":
            auth = True
        fields.append(f"{name}: {value}\r\n")
    caller = "".join(fields)
    # One CRLF per field: any other CR or LF is in a name or value and would end it early.
    if caller.count("\n") != len(fields) or caller.count("\r") != len(fields) or not request.method.isalpha():
        raise ValueError("a request header (or the method) contains CR or LF")
    extra = "" if auth else target.auth
    if not encoding:
        extra += "Accept-Encoding: gzip, deflate\r\n"  # as aiohttp sent; decoded below
    if request.body or request.method not in _NO_CONTENT:
        extra += f"Content-Length: {len(request.body)}\r\n"  # a POST says 0; a GET without a body says nothing
    head = f"{request.method}{target.line}{caller}{extra}\r\n"
    try:
        return head.encode()
    except UnicodeEncodeError:
        raise ValueError("a request header is not valid text") from None


def idle_seconds(header: str) -> float:
    """Seconds to keep the socket idle: a bit less than the server's ``Keep-Alive: timeout=N``."""
    for param in header.split(","):
        name, _, value = param.partition("=")
        if name.strip().lower() == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                break
            return min(IDLE_CAP, max(seconds - 1.0, seconds / 2))
    return IDLE_CAP


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "Server disconnected"
    if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
        exc = exc.__context__  # a zlib error from on_body, say
    return str(exc) or type(exc).__name__
