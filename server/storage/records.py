"""Plain records that cross the storage boundary: a virtual key and a request-log row.

They are dataclasses, not ORM objects: the hot path holds ``KeyRecord`` values in an in-memory snapshot and
hands ``LogRow`` values to a queue; neither touches the database.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

__all__ = ["MCP_TOOL_ENDPOINT", "KeyRecord", "LogRow"]

MCP_TOOL_ENDPOINT = "mcp_tool"  # a log row's endpoint for an MCP tool call that is not a model call


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    """A virtual key as stored: never the secret, only its SHA-256 hex digest and a visible prefix."""

    id: str
    name: str
    workspace_id: str
    prefix: str
    key_hash: str
    models: tuple[str, ...] = ()  # allow globs such as "openai/*"; empty means every model
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    department_id: str | None = None
    agent_id: str | None = None  # the agent the key is bound to: its calls act as that agent, and only as it
    scopes: tuple[str, ...] = ()  # "admin" opens /admin/* for the key's own workspace
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)  # deny_models, providers, max_tokens


@dataclasses.dataclass(slots=True, kw_only=True)
class LogRow:
    """One row per request, success or failure. Money is integer nano-USD."""

    request_id: str
    created_at: datetime
    endpoint: str
    key_id: str | None = None
    workspace_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    model: str | None = None  # as the client asked for it
    provider: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    status: str = "ok"  # ok | error | client_disconnected
    http_status: int = 200
    error_code: str | None = None
    error_message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    cost_nano: int = 0
    price_source: str | None = None
    attempts: int = 0  # upstream attempts (retries and fallbacks included); 0 when none was made
    attempt_log: str | None = None  # JSON list, one object per attempt: deployment, status, error, class, ms
    department_id: str | None = None
    policy_events: str | None = None  # JSON list, one object per policy/limit decision: decision, rule, reason
    body_ref: str | None = None  # object key of the archived request/response bodies (``server.telemetry.archive``)
