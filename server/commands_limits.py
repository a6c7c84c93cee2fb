"""``alephant budgets`` and ``alephant limits``: manage budgets and rate/concurrency limits in the store.

They act on the store the server uses (same settings); running gateways pick the change up within
``key_refresh_interval``. Problems are one readable line each, exit code 2 for bad input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from finance.budgets import PERIODS
from finance.money import format_usd, to_nano

from .cli_output import ConfigOption, JsonOption, fail, out
from .limits.types import BUDGET_SCOPES, LIMIT_KINDS, LIMIT_SCOPES

if TYPE_CHECKING:
    from .limits.types import BudgetRule
    from .storage import Database

__all__ = ["budgets_app", "limits_app"]

budgets_app = typer.Typer(help="Create, list and delete budgets (spend caps per period).", no_args_is_help=True)
limits_app = typer.Typer(help="Create, list and delete rate and concurrency limits.", no_args_is_help=True)

T = TypeVar("T")

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="Workspace the rule belongs to.")]


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise fail(f"{option}: got {value!r}, expected one of {', '.join(allowed)}")
    return value


def _with_store(config: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    import asyncio

    from .config import ConfigError, load_settings
    from .storage import Database

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None

    async def run() -> T:
        async with Database(settings.resolved_database_url) as database:
            await database.migrate()
            return await work(database)

    try:
        return asyncio.run(run())
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the store: {type(exc).__name__}", code=1) from None


@budgets_app.command("create")
def budgets_create(
    scope: Annotated[str, typer.Option(help=f"One of {', '.join(BUDGET_SCOPES)}.")],
    period: Annotated[str, typer.Option(help=f"One of {', '.join(PERIODS)}.")],
    limit: Annotated[str, typer.Option(help="USD per period, as a decimal, e.g. 25.00.")],
    scope_id: Annotated[str | None, typer.Option(help="The key/agent/run/... id; omit for each one.")] = None,
    mode: Annotated[str, typer.Option(help="hard (refuse, 402) or soft (alert only).")] = "hard",
    time_zone: Annotated[
        str | None, typer.Option("--tz", help="IANA zone of the period's calendar (default: the workspace's).")
    ] = None,
    workspace: WorkspaceOption = "default",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a budget, e.g. `alephant budgets create --scope key --scope-id key_1 --period daily --limit 5`."""
    from .limits import LimitStore
    from .storage.governance import GovernanceStore

    _choice(scope, BUDGET_SCOPES, "--scope")
    _choice(period, PERIODS, "--period")
    _choice(mode, ("hard", "soft"), "--mode")
    try:
        amount = Decimal(limit)
        if not amount.is_finite() or amount < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise fail(f"--limit: got {limit!r}, expected a non-negative decimal amount of USD such as 25.00") from None
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"--tz: unknown time zone {time_zone!r}; use an IANA name such as Europe/Paris") from None

    async def create(database: Database) -> BudgetRule:
        zone = time_zone or await GovernanceStore(database).time_zone(workspace)
        return await LimitStore(database).create_budget(
            workspace_id=workspace,
            scope=scope,
            scope_id=scope_id,
            period=period,
            limit_nano=to_nano(amount),
            mode=mode,
            time_zone=zone,
        )

    rule = _with_store(config, create)
    if as_json:
        out.print_json(json.dumps(_budget_row(rule)))
    else:
        out.print(f"created budget {rule.id}: {rule.mode} {format_usd(rule.limit_nano)} USD {rule.period}")


def _budget_row(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "workspace_id": rule.workspace_id,
        "scope": rule.scope,
        "scope_id": rule.scope_id,
        "period": rule.period,
        "limit_nano": rule.limit_nano,
        "mode": rule.mode,
        "time_zone": rule.time_zone,
    }


@budgets_app.command("list")
def budgets_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's budgets."""
    from .limits import LimitStore

    rules = _with_store(config, lambda db: LimitStore(db).budgets(workspace))
    if as_json:
        out.print_json(json.dumps([_budget_row(rule) for rule in rules]))
        return
    table = Table("id", "scope", "scope id", "period", "limit USD", "mode", "time zone")
    for rule in rules:
        scope_id = rule.scope_id or "(each)"
        table.add_row(
            rule.id, rule.scope, scope_id, rule.period, format_usd(rule.limit_nano), rule.mode, rule.time_zone
        )
    out.print(table)


@budgets_app.command("delete")
def budgets_delete(budget_id: str, workspace: WorkspaceOption = "default", config: ConfigOption = None) -> None:
    """Delete a budget by id."""
    from .limits import LimitStore
    from .storage.schema import budgets

    if not _with_store(config, lambda db: LimitStore(db).delete(budgets, budget_id, workspace_id=workspace)):
        raise fail(f"no budget {budget_id!r} in workspace {workspace!r}; `alephant budgets list` shows them", 1)
    out.print(f"deleted budget {budget_id}")


@limits_app.command("create")
def limits_create(
    scope: Annotated[str, typer.Option(help=f"One of {', '.join(LIMIT_SCOPES)}.")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(LIMIT_KINDS)}.")],
    limit: Annotated[int, typer.Option(min=1, help="Requests, tokens, or calls in flight.")],
    scope_id: Annotated[str | None, typer.Option(help="The key/agent/model id; omit for each one.")] = None,
    workspace: WorkspaceOption = "default",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a limit, e.g. `alephant limits create --scope key --scope-id key_1 --kind rpm --limit 60`."""
    from .limits import LimitStore

    _choice(scope, LIMIT_SCOPES, "--scope")
    _choice(kind, LIMIT_KINDS, "--kind")
    rule = _with_store(
        config,
        lambda db: LimitStore(db).create_limit(
            workspace_id=workspace, scope=scope, scope_id=scope_id, kind=kind, limit=limit
        ),
    )
    row = {"id": rule.id, "scope": rule.scope, "scope_id": rule.scope_id, "kind": rule.kind, "limit": rule.limit}
    if as_json:
        out.print_json(json.dumps(row))
    else:
        out.print(f"created limit {rule.id}: {rule.kind} {rule.limit}")


@limits_app.command("list")
def limits_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's rate and concurrency limits."""
    from .limits import LimitStore

    rules = _with_store(config, lambda db: LimitStore(db).limits(workspace))
    if as_json:
        rows = [{"id": r.id, "scope": r.scope, "scope_id": r.scope_id, "kind": r.kind, "limit": r.limit} for r in rules]
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "scope", "scope id", "kind", "limit")
    for rule in rules:
        table.add_row(rule.id, rule.scope, rule.scope_id or "(each)", rule.kind, str(rule.limit))
    out.print(table)


@limits_app.command("delete")
def limits_delete(limit_id: str, workspace: WorkspaceOption = "default", config: ConfigOption = None) -> None:
    """Delete a limit by id."""
    from .limits import LimitStore
    from .storage.schema import limits

    if not _with_store(config, lambda db: LimitStore(db).delete(limits, limit_id, workspace_id=workspace)):
        raise fail(f"no limit {limit_id!r} in workspace {workspace!r}; `alephant limits list` shows them", 1)
    out.print(f"deleted limit {limit_id}")
