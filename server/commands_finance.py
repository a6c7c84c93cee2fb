"""``alephant finance``: the ledger's totals and margins in the terminal, or as CSV/JSON for spreadsheets.

It reads the store the server uses (same settings) through the same service as ``GET /v1/finance/summary``,
so the numbers are the same ones, computed by the same query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from finance.ledger import GROUPS, Group, Totals, combine
from finance.money import format_usd

from .cli_output import fail, out
from .errors import InvalidRequest

if TYPE_CHECKING:
    from .storage.ledger import LedgerFilter

__all__ = ["finance_app"]

finance_app = typer.Typer(help="Spend, revenue and margin from the ledger.", no_args_is_help=True)


_COLUMNS = ("model_cost", "tool_spend", "payment_spend", "adjustments", "total_spend", "revenue", "margin")


async def _summary(
    url: str, workspace: str, group_by: Group | None, where: LedgerFilter
) -> list[tuple[str | None, Totals]]:
    from .ledger import Ledger
    from .storage import Database
    from .storage.ledger import LedgerStore

    async with Database(url) as database:
        await database.migrate()
        return await Ledger(LedgerStore(database)).summary(workspace, group_by=group_by, where=where)


def _table(group_by: Group | None, rows: list[tuple[str | None, Totals]]) -> Table:
    table = Table(group_by or "workspace", *(c.replace("_", " ") for c in _COLUMNS), "cache savings", "requests")
    for column in table.columns[1:-1]:
        column.justify = "right"
    table.columns[-1].justify = "right"
    for key, totals in [*rows, ("total", combine(t for _, t in rows))]:
        amounts = totals.amounts()
        margin = amounts["margin"]
        cells = [format_usd(amounts[c]) for c in _COLUMNS]
        cells[-1] = f"[{'red' if margin < 0 else 'green'}]{cells[-1]}[/]"
        style = "bold" if key == "total" else None
        table.add_row(key or "(none)", *cells, format_usd(totals.cache_savings), str(totals.requests), style=style)
    return table


@finance_app.command("report")
def report(
    group_by: Annotated[str | None, typer.Option("--group-by", "-g", help=f"One of: {', '.join(GROUPS)}.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="Start (inclusive): 2026-11-01 or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="End (exclusive; a date includes its day).")] = None,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace to report on.")] = "default",
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (USD text and nano-USD columns).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Path to alephant.yaml.")] = None,
) -> None:
    """Totals and margin (revenue - model, tool and payment spend) per group, or for the whole workspace."""
    import asyncio

    from .config import ConfigError, load_settings
    from .ledger import parse_window, summary_csv, totals_json
    from .storage.ledger import LedgerFilter

    if group_by is not None and group_by not in GROUPS:
        raise fail(f"--group-by: got {group_by!r}, expected one of {', '.join(GROUPS)}")
    try:
        settings = load_settings(config)
        start, end = parse_window(since, until)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except InvalidRequest as exc:
        raise fail(exc.message) from None
    grouping: Group | None = next((g for g in GROUPS if g == group_by), None)
    try:
        rows = asyncio.run(
            _summary(settings.resolved_database_url, workspace, grouping, LedgerFilter(since=start, until=end))
        )
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the store: {type(exc).__name__}") from None
    if as_csv:
        print(summary_csv(grouping, rows), end="")
    elif as_json:
        for key, totals in rows:
            print(json.dumps({"group": key, **totals_json(totals)}))
    else:
        out.print(_table(grouping, rows))
        window = f"{start.isoformat() if start else 'the beginning'} to {end.isoformat() if end else 'now'}"
        out.print(f"workspace {workspace}, {window}; amounts in USD", highlight=False)
