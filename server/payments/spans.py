"""Payment spans in a run's trace: one ``payment`` span per payment made (buying) or taken (selling) by a call
that names its run (``Alephant-Run-Id``).

A span is written after the money moved (or failed to), and failing to write it never fails the payment: the
ledger and the ``payments`` rows are the record; the span is the trace's view of it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ..runs import Runs, new_id
from ..storage import Database
from ..storage.runs import SpanRecord

__all__ = ["payment_span"]

_log = logging.getLogger("alephant.payments")


async def payment_span(
    database: Database,
    *,
    workspace_id: str,
    run_id: str | None,
    session_id: str | None,
    name: str,
    started_at: datetime,
    status: str,
    cost_nano: int,
    attributes: dict[str, Any],
) -> None:
    """Add the span when there is a run to hang it on; nothing otherwise."""
    if not run_id:
        return
    span = SpanRecord(
        id=new_id("span"),
        workspace_id=workspace_id,
        run_id=run_id,
        kind="payment",
        name=name,
        started_at=started_at,
        ended_at=datetime.now(UTC),
        status=status,
        session_id=session_id,
        cost_nano=cost_nano,
        attributes=attributes,
    )
    try:
        await Runs(database).add_span(span, require_run=False)
    except Exception as exc:  # the payment stands; only its trace entry is missing
        _log.warning("payment span for run %s not written: %s", run_id, type(exc).__name__)
