"""The seam between limits and the money records, both ways.

In: where a budget counter starts when the backend has none. A counter is missing on a budget's first use in a
window and after Redis lost its data; seeding it from the ledger's totals (model cost from the request log,
tool and payment spend and adjustments from ledger entries — ``LedgerStore.spent``) keeps the period's spend
instead of starting again at zero.

Out: spend recorded in the ledger outside a model call (``POST /v1/spend``, adjustments) counts against budgets
through ``spend_listener``. Payments are not announced: they reserve before signing and commit when they
settle (``Limiter.reserve``/``settle``), so counting their ledger entry again would count them twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..call import AgentContext, Principal
from ..ledger import SpendListener
from ..storage import Database
from ..storage.ledger import LedgerEntry, LedgerFilter, LedgerStore
from .types import BudgetScope

if TYPE_CHECKING:
    from .limiter import Limiter

__all__ = ["SpentSource", "spend_listener", "spent_from_ledger"]


class SpentSource(Protocol):
    """What a budget scope spent in a window, in nano-USD, read from the store (never on the hot path)."""

    async def __call__(
        self,
        database: Database,
        *,
        workspace_id: str,
        scope: BudgetScope,
        scope_value: str,
        start: datetime,
        end: datetime | None,
    ) -> int: ...


_SCOPE_FIELDS = {"department": "department_id", "key": "key_id", "agent": "agent_id", "run": "run_id"}


async def spent_from_ledger(
    database: Database,
    *,
    workspace_id: str,
    scope: BudgetScope,
    scope_value: str,
    start: datetime,
    end: datetime | None,
) -> int:
    """Nano-USD the scope spent in ``[start, end)``: the ledger's budget kinds (model cost, tool and payment
    spend, adjustments) for that workspace and scope.

    Calls whose log rows are still queued (the writer flushes every ``log.flush_interval``) are not counted;
    seeding happens once per window per budget, so that lag matters only right after a Redis restart.
    """
    where = LedgerFilter(since=start, until=end)
    if scope != "workspace":
        where = LedgerFilter(since=start, until=end, **{_SCOPE_FIELDS[scope]: scope_value})
    return await LedgerStore(database).spent(workspace_id, where)


def spend_listener(limiter: Limiter) -> SpendListener:
    """The ledger's ``on_spend``: a new tool spend or adjustment entry counts against its budgets."""

    async def count(entry: LedgerEntry) -> None:
        if entry.kind == "payment_spend":
            return  # reserved before signing and committed at settlement (see the module docstring)
        principal = Principal(
            key_id=entry.key_id or "",
            workspace_id=entry.workspace_id,
            department_id=entry.department_id,
            agent_id=entry.agent_id,
        )
        context = AgentContext(agent_id=entry.agent_id, run_id=entry.run_id, session_id=entry.session_id)
        await limiter.add_spend(principal, context, entry.amount_nano)

    return count
