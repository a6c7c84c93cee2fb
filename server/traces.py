"""A run's trace as a tree: run → session → request → attempt, with spans (tool calls, payments) where they hang.

Requests are their request-log rows and attempts come from each row's ``attempt_log``, so the tree is built
from what the gateway already stores rather than from a second write per request. A span hangs under the span
or request its ``parent_id`` names, else under its request, else under its session, else under the run.
Every node has ``kind``, ``id``, ``parent_id``, timings, status, tokens, cost and ``children``; the run node
adds ``totals`` over everything below it. Money is integer nano-USD, with a decimal ``cost_usd`` beside it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

from finance.money import format_usd

from .storage.records import MCP_TOOL_ENDPOINT, LogRow
from .storage.runs import RunRecord, RunSummary, SpanRecord

__all__ = ["build_trace", "log_json", "run_json", "summary_json"]

Node = dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _duration_ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def _json_list(text: str | None) -> list[Any]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _attempts(row: LogRow) -> list[Node]:
    nodes = []
    for index, attempt in enumerate(_json_list(row.attempt_log)):
        nodes.append(
            {
                "kind": "attempt",
                "id": f"{row.request_id}#{index + 1}",
                "parent_id": row.request_id,
                "name": attempt.get("model") or attempt.get("d"),
                "deployment": attempt.get("d"),
                "status": "error" if attempt.get("error") else "ok",
                "http_status": attempt.get("status"),
                "error_code": attempt.get("error"),
                "failure": attempt.get("class"),
                "duration_ms": attempt.get("ms"),
                "children": [],
            }
        )
    return nodes


def _request(row: LogRow) -> Node:
    ended = row.created_at + timedelta(milliseconds=row.latency_ms)
    tool = row.properties.get("mcp_tool") if row.endpoint == MCP_TOOL_ENDPOINT else None
    return {
        "kind": "tool" if tool else "request",
        "id": row.request_id,
        "parent_id": row.session_id,
        "name": f"mcp {tool}" if tool else f"{row.endpoint} {row.model or ''}".strip(),
        "started_at": _iso(row.created_at),
        "ended_at": _iso(ended),
        "duration_ms": round(row.latency_ms, 3),
        "ttfb_ms": round(row.ttfb_ms, 3) if row.ttfb_ms is not None else None,
        "status": row.status,
        "http_status": row.http_status,
        "error_code": row.error_code,
        "model": row.model,
        "provider": row.provider,
        "upstream_model": row.upstream_model,
        "agent_id": row.agent_id,
        "session_id": row.session_id,
        "key_id": row.key_id,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_nano": row.cost_nano,
        "cost_usd": format_usd(row.cost_nano),
        "policy_events": _json_list(row.policy_events),
        "children": _attempts(row),
    }


def _span(span: SpanRecord) -> Node:
    return {
        "kind": span.kind,
        "id": span.id,
        "parent_id": span.parent_id,
        "name": span.name,
        "started_at": _iso(span.started_at),
        "ended_at": _iso(span.ended_at),
        "duration_ms": _duration_ms(span.started_at, span.ended_at),
        "status": span.status,
        "session_id": span.session_id,
        "request_id": span.request_id,
        "cost_nano": span.cost_nano,
        "cost_usd": format_usd(span.cost_nano),
        "attributes": span.attributes,
        "children": [],
    }


def _session(session_id: str, run_id: str) -> Node:
    return {"kind": "session", "id": session_id, "parent_id": run_id, "name": session_id, "children": []}


def _totals(requests: list[LogRow], spans: list[SpanRecord]) -> dict[str, Any]:
    cost = sum(row.cost_nano for row in requests) + sum(span.cost_nano for span in spans)
    return {
        "requests": len(requests),
        "errors": sum(1 for row in requests if row.status != "ok"),
        "attempts": sum(row.attempts for row in requests),
        "prompt_tokens": sum(row.prompt_tokens for row in requests),
        "completion_tokens": sum(row.completion_tokens for row in requests),
        "spans": len(spans),
        "policy_denials": sum(
            1 for row in requests for event in _json_list(row.policy_events) if event.get("decision") == "deny"
        ),
        "cost_nano": cost,
        "cost_usd": format_usd(cost),
    }


def _window(requests: list[LogRow], spans: list[SpanRecord]) -> tuple[datetime | None, datetime | None]:
    starts = [row.created_at for row in requests] + [span.started_at for span in spans]
    ends = [row.created_at + timedelta(milliseconds=row.latency_ms) for row in requests]
    ends += [span.ended_at or span.started_at for span in spans]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _session_window(session: Node) -> None:
    starts = [child["started_at"] for child in session["children"] if child.get("started_at")]
    ends = [child["ended_at"] for child in session["children"] if child.get("ended_at")]
    session["started_at"] = min(starts) if starts else None
    session["ended_at"] = max(ends) if ends else None


def build_trace(
    run_id: str, run: RunRecord | None, requests: list[LogRow], spans: list[SpanRecord], *, truncated: bool = False
) -> Node:
    """The run's tree, oldest first at every level; ``truncated`` says the request list was cut at a limit."""
    first, last = _window(requests, spans)
    root: Node = {
        "object": "run",
        "kind": "run",
        "id": run_id,
        "parent_id": run.agent_id if run else None,
        "explicit": run is not None,
        "status": run.status if run else "implicit",
        "agent_id": (run.agent_id if run else None) or next((r.agent_id for r in requests if r.agent_id), None),
        "key_id": run.key_id if run else None,
        "metadata": run.metadata if run else {},
        "started_at": _iso(run.started_at if run else first),
        "ended_at": _iso(run.ended_at if run else last),
        "last_seen": _iso(last),
        "totals": _totals(requests, spans),
        "truncated": truncated,
        "children": [],
    }
    root["duration_ms"] = _duration_ms(run.started_at if run else first, (run.ended_at if run else None) or last)
    sessions: dict[str, Node] = {}
    by_id: dict[str, Node] = {}

    def place(node: Node, session_id: str | None) -> None:
        if session_id is None:
            root["children"].append(node)
            return
        session = sessions.get(session_id)
        if session is None:
            session = sessions[session_id] = _session(session_id, run_id)
            root["children"].append(session)
        session["children"].append(node)

    for row in requests:
        node = _request(row)
        by_id[row.request_id] = node
        place(node, row.session_id)
    span_nodes = [(span, _span(span)) for span in spans]
    for span, node in span_nodes:
        by_id[span.id] = node
    for span, node in span_nodes:
        parent = by_id.get(span.parent_id or "") or by_id.get(span.request_id or "")
        if parent is not None and parent is not node:
            node["parent_id"] = parent["id"]
            parent["children"].append(node)
        else:
            node["parent_id"] = span.session_id or run_id
            place(node, span.session_id)
    for session in sessions.values():
        _session_window(session)
    return root


def run_json(run: RunRecord) -> Node:
    return {
        "object": "run",
        "id": run.id,
        "status": run.status,
        "explicit": run.explicit,
        "agent_id": run.agent_id,
        "key_id": run.key_id,
        "metadata": run.metadata,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
    }


def summary_json(summary: RunSummary) -> Node:
    return {
        "object": "run",
        "id": summary.id,
        "status": summary.status,
        "explicit": summary.status != "implicit",
        "agent_id": summary.agent_id,
        "metadata": summary.metadata,
        "started_at": _iso(summary.started_at),
        "ended_at": _iso(summary.ended_at),
        "last_seen": _iso(summary.last_seen),
        "requests": summary.requests,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "cost_nano": summary.cost_nano,
        "cost_usd": format_usd(summary.cost_nano),
    }


def log_json(row: LogRow) -> Node:
    """A request-log row for APIs and ``--json``: times as ISO text, JSON lists parsed, cost also in USD."""
    data = dataclasses.asdict(row)
    data["created_at"] = row.created_at.isoformat()
    data["cost_usd"] = format_usd(row.cost_nano)
    data["attempt_log"] = _json_list(row.attempt_log)
    data["policy_events"] = _json_list(row.policy_events)
    return data
