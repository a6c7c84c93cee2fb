"""Redaction: credentials never leave the gateway through an archive, a span or a sink.

A header is a credential when its name is an authorization or cookie header or ends in ``key``, ``token`` or
``secret`` (``x-api-key``, ``x-goog-api-key``, ``api-key``...). Its value is replaced, and the same value is also
cut out of the bodies, in case a client pasted its key into a message. JSON bodies additionally lose the values
of fields named like credentials (``api_key``, ``authorization``, ``password``...), at any depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["REDACTED", "credential_values", "is_credential_header", "redact_headers", "redact_json", "scrub"]

REDACTED = "[redacted]"
_HEADER_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_HEADER_SUFFIXES = ("key", "token", "secret")
_JSON_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "authorization",
        "password",
        "secret",
        "client_secret",
        "access_token",
        "refresh_token",
        "private_key",
        "secret_access_key",
    }
)
_MIN_SECRET = 8  # shorter values (a "Bearer" scheme word, a stray "1") would cut ordinary text to pieces


def is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _HEADER_NAMES or lowered.endswith(_HEADER_SUFFIXES)


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names to values (repeated names joined by ``, ``), credentials replaced."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = REDACTED if is_credential_header(name) else raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def credential_values(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """The credential headers' values and their bearer tokens, longest first, so scrubbing cuts whole ones."""
    found: set[bytes] = set()
    for raw_name, raw_value in headers:
        if is_credential_header(raw_name.decode("latin-1")):
            value = raw_value.strip()
            found.add(value)
            _, _, token = value.partition(b" ")
            found.add(token.strip())
    return sorted((v for v in found if len(v) >= _MIN_SECRET), key=len, reverse=True)


def scrub(data: bytes, secrets: Sequence[bytes]) -> bytes:
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, REDACTED.encode())
    return data


def redact_json(value: Any) -> Any:
    """A copy of a parsed JSON value with credential-named fields' values replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in _JSON_KEYS else redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value
