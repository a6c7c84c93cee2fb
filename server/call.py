"""The state of one request as it moves through the pipeline, and the reply the pipeline produces.

A ``Call`` is the only per-request object the gateway allocates besides the body itself: every stage reads and
writes its fields instead of passing new objects along. ``Reply`` is what the innermost stage returns and the
outer stages decorate (headers) or wrap (the stream, so the record stage sees its end).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import Message

from finance.pricing import Cost
from providers.catalog import Resolved
from providers.ingress import IngressDialect
from providers.types import Endpoint, Usage

from .errors import GatewayError
from .routing.types import AttemptRecord, Group, Plan

__all__ = ["AgentContext", "Call", "PolicyEvent", "Principal", "Reply", "new_request_id"]


def new_request_id() -> str:
    """Sortable, unique, URL-safe: 12 hex digits of milliseconds then 16 random hex digits."""
    return f"req_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a virtual key, or the master key (``key_id == "master"``)."""

    key_id: str
    workspace_id: str
    models: tuple[str, ...] = ()  # allow globs; empty allows every model
    department_id: str | None = None
    agent_id: str | None = None  # the agent the key is bound to: its calls act as that agent
    scopes: tuple[str, ...] = ()  # "admin" lets the key use /admin/*; the master key has every scope

    @property
    def is_master(self) -> bool:
        return self.key_id == "master"


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyEvent:
    """One policy or limit decision on a call, kept on its log row and trace: allow or deny, which rule, why."""

    decision: str  # allow | deny | alert (a soft budget crossed)
    rule: str  # a stable rule id, e.g. "workspace:ws_1:deny_models" or "budget:key:key_1:daily"
    reason: str

    def compact(self) -> dict[str, str]:
        return {"decision": self.decision, "rule": self.rule, "reason": self.reason}


@dataclasses.dataclass(slots=True)
class AgentContext:
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    properties: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class Reply:
    """A response in the caller's dialect: a buffered body, or a stream of SSE bytes."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    media_type: str = "application/json"


@dataclasses.dataclass(slots=True)
class Call:
    request: Request
    endpoint: Endpoint
    dialect: IngressDialect
    request_id: str = dataclasses.field(default_factory=new_request_id)
    started: float = dataclasses.field(default_factory=time.perf_counter)
    created_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(tz=UTC))
    principal: Principal | None = None
    context: AgentContext = dataclasses.field(default_factory=AgentContext)
    raw: bytes = b""
    body: dict[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None  # as the client named it
    stream: bool = False
    client_wants_usage: bool = False
    translated: bool = False  # the body was translated from the client's dialect (its bytes cannot be reused)
    client_body: dict[str, Any] | None = None  # the client's own body, when it was translated
    native: bool = False  # the upstream spoke the client's dialect: the answer needs no translation back
    target: Resolved | None = None  # the deployment that answered (the first candidate until one did)
    router_id: str | None = None  # /router/{id}/...: the router that maps ``model`` to a group
    group: Group | None = None  # the router's group for ``model``
    plan: Plan | None = None  # the route stage's decision: the group, attempts cap and deadline
    attempts: list[AttemptRecord] = dataclasses.field(default_factory=list)
    fallbacks: list[str] = dataclasses.field(default_factory=list)  # "failure:from->to" per fallback taken
    passthrough: bool = False  # a direct provider passthrough call (``/{provider}/...``)
    policy_events: list[PolicyEvent] = dataclasses.field(default_factory=list)
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost: Cost | None = None
    first_byte: float | None = None  # perf_counter of the first byte sent to the client
    status: str = "ok"  # ok | error | client_disconnected
    error: GatewayError | None = None  # set when the call failed, before or during a stream

    @classmethod
    def internal(
        cls, *, headers: Mapping[str, str], body: bytes, endpoint: Endpoint, dialect: IngressDialect, path: str
    ) -> Call:
        """A call that did not arrive as an HTTP request of its own (an MCP tool call, say).

        It carries headers and a body exactly like one, so it goes through the same pipeline: the same
        authentication, agent context, policy, dispatch and log row.
        """
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "method": "POST", "path": path, "headers": raw_headers, "query_string": b""}
        return cls(request=Request(scope, receive), endpoint=endpoint, dialect=dialect)

    def elapsed_ms(self, until: float | None = None) -> float:
        return ((until if until is not None else time.perf_counter()) - self.started) * 1000
