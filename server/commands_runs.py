"""``alephant runs list|show`` and ``alephant logs search|prune``: runs, traces and the request log from the terminal.

They read the store the server uses (the same settings), never a running server, so they work while it is down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from finance.money import format_usd

if TYPE_CHECKING:
    from .storage.database import Database
    from .storage.records import LogRow
    from .storage.runs import RunSummary

__all__ = ["logs_prune", "logs_search", "runs_app"]

# server.storage.runs.RUN_STATUSES, copied: importing it loads the whole store (SQLAlchemy), too much for `--help`.
RUN_STATUSES = ("running", "completed", "failed", "cancelled", "implicit")

runs_app = typer.Typer(help="List runs and show a run's trace tree.", no_args_is_help=True)
out = Console(soft_wrap=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to alephant.yaml (default: ./alephant.yaml if present).")
]
WorkspaceOption = Annotated[str, typer.Option(help="The workspace to read.")]
_AGE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


T = TypeVar("T")


def _store_call(config: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    # The CLI module's helpers (settings errors, store errors, one line each); imported late because it imports us.
    from .cli import _settings, _with_store

    return _with_store(_settings(config), work)


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time such as 2026-11-26T12:00:00Z", param_hint=option
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _age(text: str) -> timedelta:
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not an age such as 30d, 12h, 90m or 2w", param_hint="--older-than")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


# --- runs ----------------------------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    workspace: WorkspaceOption = "default",
    agent: Annotated[str | None, typer.Option(help="Only this agent's runs.")] = None,
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(RUN_STATUSES)}.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="Started at or after (ISO time).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Started before (ISO time).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """List runs, newest first: explicit ones (POST /v1/runs) and implicit ones (Alephant-Run-Id only)."""
    from .storage.runs import RunStore
    from .traces import summary_json

    if status is not None and status not in RUN_STATUSES:
        raise typer.BadParameter(f"expected one of {', '.join(RUN_STATUSES)}", param_hint="--status")
    start, end = _time(since, "--from"), _time(until, "--to")

    async def work(db: Database) -> list[RunSummary]:
        return await RunStore(db).list(workspace, agent_id=agent, status=status, since=start, until=end, limit=limit)

    found = _store_call(config, work)
    if as_json:
        for summary in found:
            print(json.dumps(summary_json(summary)))
        return
    table = Table("run", "status", "agent", "started", "requests", "tokens in/out", "cost USD")
    for s in found:
        table.add_row(
            s.id,
            s.status,
            s.agent_id or "",
            s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(s.requests),
            f"{s.prompt_tokens}/{s.completion_tokens}",
            format_usd(s.cost_nano),
        )
    out.print(table)


def _label(node: dict[str, Any]) -> str:
    kind = node["kind"]
    parts = [f"[bold]{kind}[/] {node['id']}"]
    if kind == "run":
        totals = node["totals"]
        parts += [
            f"[{node['status']}]",
            f"agent {node['agent_id']}" if node.get("agent_id") else "",
            f"{totals['requests']} requests",
            f"{totals['prompt_tokens']}/{totals['completion_tokens']} tokens",
            f"${totals['cost_usd']}",
        ]
    elif kind == "request":
        parts += [
            node["name"],
            f"{node['http_status']} {node['error_code'] or node['status']}",
            f"{node['prompt_tokens']}/{node['completion_tokens']} tokens",
            f"${node['cost_usd']}",
        ]
    elif kind == "attempt":
        parts += [str(node["deployment"]), str(node["http_status"]), node["error_code"] or ""]
    elif kind != "session":
        parts += [node["name"], node["status"], f"${node['cost_usd']}" if node.get("cost_nano") else ""]
    if node.get("duration_ms") is not None:
        parts.append(f"{node['duration_ms']:.1f} ms")
    return "  ".join(part for part in parts if part)


def _grow(tree: Tree, node: dict[str, Any]) -> None:
    branch = tree.add(_label(node))
    for event in node.get("policy_events", []):
        branch.add(f"[yellow]policy {event.get('decision')}[/] {event.get('rule')}: {event.get('reason')}")
    for child in node["children"]:
        _grow(branch, child)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (Alephant-Run-Id, or the id POST /v1/runs returned).")],
    workspace: WorkspaceOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the tree as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show a run's trace: sessions, requests, attempts and spans, with timings, tokens, cost and policy events."""
    from .storage.runs import RunStore, SpanStore
    from .traces import build_trace

    async def work(db: Database) -> dict[str, Any] | None:
        store = RunStore(db)
        run = await store.get(workspace, run_id)
        requests = await store.requests(workspace, run_id, limit=10_001)
        spans = await SpanStore(db).for_run(workspace, run_id)
        if run is None and not requests and not spans:
            return None
        return build_trace(run_id, run, requests[:10_000], spans, truncated=len(requests) > 10_000)

    trace = _store_call(config, work)
    if trace is None:
        out.print(f"[bold red]error:[/] no run {run_id!r} in workspace {workspace!r} (see `alephant runs list`)")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(trace, indent=2))
        return
    root = Tree(_label(trace))
    for child in trace["children"]:
        _grow(root, child)
    out.print(root)


# --- logs ----------------------------------------------------------------------------------------------------


def logs_search(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key id.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run.")] = None,
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    model: Annotated[str | None, typer.Option(help="As sent, or provider/model as resolved.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    status: Annotated[str | None, typer.Option(help="ok, error, client_disconnected, or an HTTP status.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="At or after (ISO time).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Before (ISO time).")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", "-p", help="NAME=VALUE; repeatable.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """Search the request log, newest first, by any of its columns and Alephant-Property-* values."""
    from .storage.log_search import LogFilter, LogSearch
    from .traces import log_json

    properties = {}
    for pair in prop or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--property")
        properties[name.lower()] = value
    http_status = int(status) if status is not None and status.isdigit() else None
    where = LogFilter(
        workspace_id=workspace,
        key_id=key,
        agent_id=agent,
        run_id=run,
        session_id=session,
        model=model,
        provider=provider,
        status=None if http_status is not None else status,
        http_status=http_status,
        since=_time(since, "--from"),
        until=_time(until, "--to"),
        properties=properties,
    )

    async def work(db: Database) -> list[LogRow]:
        return await LogSearch(db).search(where, limit=limit)

    rows = _store_call(config, work)
    if as_json:
        for row in rows:
            print(json.dumps(log_json(row)))
        return
    table = Table("time", "request id", "agent", "run", "model", "status", "tokens in/out", "ms", "cost USD")
    for row in rows:
        table.add_row(
            row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.request_id,
            row.agent_id or "",
            row.run_id or "",
            row.model or "",
            f"{row.http_status} {row.error_code or row.status}",
            f"{row.prompt_tokens}/{row.completion_tokens}",
            f"{row.latency_ms:.1f}",
            format_usd(row.cost_nano),
        )
    out.print(table)


def logs_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="An age: 30d, 12h, 90m, 2w.")],
    workspace: Annotated[str | None, typer.Option(help="Only this workspace (default: all).")] = None,
    config: ConfigOption = None,
) -> None:
    """Delete request-log rows and spans older than an age, in batches (runs themselves are kept)."""
    from .storage.log_search import LogSearch

    cutoff = datetime.now(tz=UTC) - _age(older_than)

    async def work(db: Database) -> int:
        return await LogSearch(db).prune(cutoff, workspace_id=workspace)

    removed = _store_call(config, work)
    scope = f" of workspace {workspace}" if workspace else ""
    out.print(f"Deleted {removed} request-log rows{scope} older than {cutoff.isoformat(timespec='seconds')}.")
