"""The runs service: start and end runs, add spans, build a run's trace — one implementation for the HTTP
routes (``server.run_routes``) and the MCP tools, so both refuse the same things with the same errors.

Every operation is scoped to one workspace; a key bound to an agent only starts runs of that agent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from .call import Principal
from .errors import InvalidRequest, NotFound, PolicyDenied
from .storage import Database
from .storage.runs import RunExists, RunRecord, RunStore, SpanRecord, SpanStore
from .traces import build_trace

__all__ = ["MAX_TRACE_REQUESTS", "Runs", "new_id"]

MAX_TRACE_REQUESTS = 10_000


def new_id(prefix: str) -> str:
    """Sortable and unique, like request ids: milliseconds then 16 random hex digits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


class Runs:
    def __init__(self, database: Database, *, before_read: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = RunStore(database)
        self.spans = SpanStore(database)
        self.before_read = before_read  # the log writer's ``sync``: a trace's requests are request-log rows

    async def start(
        self,
        principal: Principal,
        workspace_id: str,
        *,
        run_id: str | None,
        agent_id: str | None,
        metadata: dict[str, Any],
    ) -> RunRecord:
        agent_id = agent_id or principal.agent_id
        if principal.agent_id is not None and agent_id != principal.agent_id:
            raise PolicyDenied(
                f"This key acts as agent '{principal.agent_id}' and may not start runs of '{agent_id}'.",
                param="agent_id",
            )
        run_id = run_id or new_id("run")
        try:
            return await self.store.create(
                workspace_id=workspace_id,
                run_id=run_id,
                agent_id=agent_id,
                key_id=principal.key_id,
                metadata=metadata,
                now=datetime.now(tz=UTC),
            )
        except RunExists:
            raise InvalidRequest(
                f"Run '{run_id}' already exists in this workspace; choose another run_id or omit it.",
                param="run_id",
                code="run_exists",
                status=409,
            ) from None

    async def end(self, workspace_id: str, run_id: str, *, status: str) -> RunRecord:
        run = await self.store.end(workspace_id, run_id, status=status, now=datetime.now(tz=UTC))
        if run is None:
            raise NotFound(
                f"No run '{run_id}' was started in this workspace (POST /v1/runs starts one; runs named only in "
                "Alephant-Run-Id headers have nothing to end).",
                code="run_not_found",
            )
        return run

    async def trace(self, workspace_id: str, run_id: str) -> dict[str, Any]:
        """The run's tree with totals; ``NotFound`` when the workspace has no trace of it at all."""
        if self.before_read is not None:
            await self.before_read()
        run = await self.store.get(workspace_id, run_id)
        requests = await self.store.requests(workspace_id, run_id, limit=MAX_TRACE_REQUESTS + 1)
        spans = await self.spans.for_run(workspace_id, run_id)
        if run is None and not requests and not spans:
            raise NotFound(f"No run '{run_id}' in this workspace.", code="run_not_found")
        truncated = len(requests) > MAX_TRACE_REQUESTS
        return build_trace(run_id, run, requests[:MAX_TRACE_REQUESTS], spans, truncated=truncated)

    async def add_span(self, span: SpanRecord, *, require_run: bool = True) -> SpanRecord:
        """Store a span; the run must be known (explicit, or seen in a request header) unless told otherwise."""
        if require_run and not await self.store.exists(span.workspace_id, span.run_id):
            raise NotFound(
                f"No run '{span.run_id}' in this workspace; start it with POST /v1/runs or send requests with its "
                "Alephant-Run-Id first.",
                code="run_not_found",
            )
        if not await self.spans.add(span):
            raise InvalidRequest(
                f"Span '{span.id}' already exists; choose another id or omit it.",
                param="id",
                code="span_exists",
                status=409,
            )
        return span
