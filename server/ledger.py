"""The ledger service: record money movements idempotently, read them back, and report totals and margins.

HTTP routes (``server.finance_routes``), the admin API, the CLI and MCP tools all go through this one service,
so an entry recorded by any of them is validated, deduplicated and announced the same way.

``on_spend`` is the seam for budgets: when set, it is awaited with every NEW entry that counts against
budgets (tool spend, payment spend, adjustments) once it is stored; a retried entry is not announced twice.
Model costs are not announced here: budgets see them at the record stage, per request.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from finance.ledger import BUDGET_KINDS, Group, Kind, Totals
from finance.money import Nano, format_usd, parse_usd

from .errors import GatewayError, InvalidRequest
from .storage.ledger import LedgerEntry, LedgerFilter, LedgerStore, new_entry_id

__all__ = [
    "IdempotencyConflict",
    "Ledger",
    "SpendListener",
    "entry_json",
    "parse_amount",
    "parse_window",
    "summary_csv",
    "totals_json",
]

SpendListener = Callable[[LedgerEntry], Awaitable[None]]
_COMPARED = ("kind", "amount_nano", "vendor", "tool", "endpoint", "agent_id", "run_id", "session_id")


class IdempotencyConflict(GatewayError):
    """The idempotency key was used before for a different entry: a client bug, never silently merged."""

    status = 409
    code = "idempotency_conflict"
    type = "invalid_request_error"


class Ledger:
    def __init__(
        self,
        store: LedgerStore,
        *,
        on_spend: SpendListener | None = None,
        before_read: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.on_spend = on_spend
        self.before_read = before_read  # the log writer's ``sync``: model costs are request-log rows

    async def record(
        self,
        *,
        workspace_id: str,
        kind: Kind,
        amount_nano: Nano,
        idempotency_key: str | None = None,
        attribution: Mapping[str, str | None] | None = None,
        vendor: str | None = None,
        tool: str | None = None,
        endpoint: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[LedgerEntry, bool]:
        """Append one entry; ``(entry, True)`` when new, ``(the original, False)`` for a repeated key.

        ``attribution`` carries department_id, key_id, agent_id, run_id, session_id and request_id.
        Raises ``InvalidRequest`` for a negative amount of a kind that has a direction, and
        ``IdempotencyConflict`` when the key was used for a different entry.
        """
        if amount_nano < 0 and kind != "adjustment":
            raise InvalidRequest(
                f"A {kind} amount must be positive (the kind says the direction); record corrections as an "
                "adjustment, which may be negative.",
                param="amount",
            )
        entry = LedgerEntry(
            id=new_entry_id(),
            created_at=datetime.now(UTC),
            workspace_id=workspace_id,
            kind=kind,
            amount_nano=amount_nano,
            vendor=vendor,
            tool=tool,
            endpoint=endpoint,
            idempotency_key=idempotency_key,
            description=description,
            metadata=dict(metadata or {}),
            **{name: value for name, value in (attribution or {}).items() if value is not None},
        )
        stored, created = await self.store.append(entry)
        if not created:
            differing = [name for name in _COMPARED if getattr(stored, name) != getattr(entry, name)]
            if differing:
                raise IdempotencyConflict(
                    f"Idempotency key '{idempotency_key}' was already used for entry {stored.id} with a different "
                    f"{', '.join(differing)} ({_shown(stored, differing)}). Retry with the original values, or "
                    "use a new key for a new entry.",
                    param="idempotency_key",
                )
            return stored, False
        if self.on_spend is not None and kind in BUDGET_KINDS:
            await self.on_spend(stored)
        return stored, True

    async def spend(
        self, workspace_id: str, where: LedgerFilter, *, limit: int = 100
    ) -> tuple[list[LedgerEntry], Totals]:
        """What ``GET /v1/spend`` and the MCP ``get_spend`` tool answer: recent entries and the window's totals."""
        if self.before_read is not None:
            await self.before_read()
        entries = await self.store.entries(workspace_id, where, limit=limit)
        totals = (await self.store.totals(workspace_id, where=where)).get(None, Totals())
        return entries, totals

    async def summary(
        self, workspace_id: str, *, group_by: Group | None, where: LedgerFilter
    ) -> list[tuple[str | None, Totals]]:
        """Totals per group, largest spend first (ties by key), or one row for the whole workspace."""
        if self.before_read is not None:
            await self.before_read()
        totals = await self.store.totals(workspace_id, group_by=group_by, where=where)
        if group_by is None:
            return [(None, totals.get(None, Totals()))]
        return sorted(totals.items(), key=lambda item: (-item[1].total_spend, item[0] or ""))


def parse_amount(amount_usd: str | None, amount_nano: int | None, *, signed: bool = False) -> Nano:
    """The amount of a request body given as decimal USD text or integer nano-USD (exactly one of them)."""
    if (amount_usd is None) == (amount_nano is None):
        raise InvalidRequest(
            'Give the amount once: amount_usd as decimal text ("0.25") or amount_nano as an integer.',
            param="amount_usd",
        )
    field = "amount_nano" if amount_usd is None else "amount_usd"
    try:
        amount = amount_nano if amount_usd is None else parse_usd(amount_usd)
    except ValueError as exc:
        raise InvalidRequest(f"amount_usd: {exc}", param=field) from None
    assert amount is not None
    if amount < 0 and not signed:
        raise InvalidRequest(
            f"{field} must not be negative: the kind says the direction (only adjustments may be negative).",
            param=field,
        )
    return amount


def _instant(name: str, text: str, *, end: bool) -> datetime:
    """An ISO datetime (UTC when no zone is given) or a date: its start, or for the window's end its end."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{name}: {text!r} is not a date (2026-11-01) or an ISO datetime (2026-11-01T12:00:00Z).", param=name
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """A report's window from ``from`` (inclusive) and ``to`` (exclusive; a bare date includes that whole day)."""
    start = _instant("from", since, end=False) if since else None
    end = _instant("to", until, end=True) if until else None
    if start is not None and end is not None and start >= end:
        raise InvalidRequest("from must be before to.", param="from")
    return start, end


def summary_csv(group_by: Group | None, rows: list[tuple[str | None, Totals]]) -> str:
    """A summary as CSV: the group, then every amount in USD text and in nano-USD, requests and entries."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([group_by or "workspace", *totals_json(Totals())])
    for key, totals in rows:
        writer.writerow([key or "", *totals_json(totals).values()])
    return buffer.getvalue()


def _shown(entry: LedgerEntry, names: list[str]) -> str:
    shown = []
    for name in names:
        value = getattr(entry, name)
        shown.append(f"{name} was {format_usd(value) + ' USD' if name == 'amount_nano' else repr(value)}")
    return "; ".join(shown)


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    data = dataclasses.asdict(entry)
    data["created_at"] = entry.created_at.astimezone(UTC).isoformat()
    data["amount_usd"] = format_usd(entry.amount_nano)
    return data


def totals_json(totals: Totals) -> dict[str, Any]:
    """Every amount twice: exact integer nano-USD (``*_nano``) and decimal USD text (``*_usd``)."""
    data: dict[str, Any] = {}
    for name, nano in totals.amounts().items():
        data[f"{name}_usd"] = format_usd(nano)
        data[f"{name}_nano"] = nano
    data["requests"] = totals.requests
    data["entries"] = totals.entries
    return data
