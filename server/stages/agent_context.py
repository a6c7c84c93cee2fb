"""Agent context from request headers: ``Alephant-Agent-Id``, ``-Run-Id``, ``-Session-Id``, ``-Request-Id``
and ``Alephant-Property-<name>``. Header names are case-insensitive (HTTP says so; Starlette lowercases them).

Values are validated so that they are safe as log columns, trace attributes and header echoes: ids are 1-128
characters of letters, digits and ``.-_:``; property names 1-64 of letters, digits, ``-`` and ``_``; property
values at most 256 printable characters, at most 32 properties. A bad value is a 400 naming the header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..call import Call, Reply
from ..errors import InvalidHeader, InvalidRequest
from ..pipeline import Handler
from ..services import Services

__all__ = ["AgentContextStage", "agent_ids", "valid_id"]

_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_PROPERTY_PREFIX = "alephant-property-"
_MAX_PROPERTIES = 32
_MAX_PROPERTY_VALUE = 256
_ID_HEADERS = (
    ("alephant-agent-id", "agent_id"),
    ("alephant-run-id", "run_id"),
    ("alephant-session-id", "session_id"),
)


def valid_id(header: str, value: str, *, field: bool = False) -> str:
    """``value`` if it is a valid id; ``field`` names a JSON body field carrying one instead of a header."""
    if not _ID.fullmatch(value):
        error = InvalidRequest if field else InvalidHeader
        where = "Field" if field else "Header"
        raise error(
            f"{where} {header} is invalid: use 1-128 ASCII letters, digits or '.', '-', '_', ':'.", param=header
        )
    return value


def agent_ids(headers: Mapping[str, str]) -> dict[str, str]:
    """The validated agent, run and session ids a request's headers carry, by field name (``agent_id``...).

    Routes outside the pipeline (``POST /v1/spend``) read the same headers the same way.
    """
    found = {}
    for header, field in _ID_HEADERS:
        value = headers.get(header)
        if value is not None:
            found[field] = valid_id(header.title(), value)
    return found


class AgentContextStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next

    async def __call__(self, call: Call) -> Reply:
        headers = call.request.headers
        context = call.context
        # Headers without our prefix are the common case: one pass over raw headers, no regex.
        for raw_name, raw_value in call.request.scope["headers"]:
            if not raw_name.startswith(b"alephant-"):
                continue
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            if name == "alephant-request-id":
                call.request_id = valid_id("Alephant-Request-Id", value)
            elif name.startswith(_PROPERTY_PREFIX):
                key = name[len(_PROPERTY_PREFIX) :]
                if not _PROPERTY_NAME.fullmatch(key):
                    raise InvalidHeader(
                        f"Header {name} has an invalid property name: use 1-64 letters, digits, '-' or '_'.",
                        param=name,
                    )
                if len(value) > _MAX_PROPERTY_VALUE or not value.isprintable():
                    raise InvalidHeader(
                        f"Header {name} is invalid: values are at most {_MAX_PROPERTY_VALUE} printable characters.",
                        param=name,
                    )
                context.properties[key] = value
                if len(context.properties) > _MAX_PROPERTIES:
                    raise InvalidHeader(f"Too many Alephant-Property-* headers: at most {_MAX_PROPERTIES}.", param=name)
        for field, value in agent_ids(headers).items():
            setattr(context, field, value)
        return await self.next(call)
