"""The in-memory copy of every budget and limit, which the limits stage reads per request (no query).

Like the key snapshot (``server.keyring``), a background task polls ``state_version('limits')`` every
``key_refresh_interval`` and reloads when it moved, so a rule created or deleted on any replica, by the CLI or
the admin API, takes effect everywhere within that interval.
"""

from __future__ import annotations

import dataclasses
import logging

from ..polling import Poller
from .store import LimitStore
from .types import BudgetRule, LimitRule

__all__ = ["LimitsSnapshot", "WorkspaceRules"]

_log = logging.getLogger("alephant.limits")


@dataclasses.dataclass(frozen=True, slots=True)
class WorkspaceRules:
    budgets: tuple[BudgetRule, ...] = ()
    limits: tuple[LimitRule, ...] = ()


_NONE = WorkspaceRules()


class LimitsSnapshot:
    def __init__(self, store: LimitStore, *, refresh_interval: float) -> None:
        self._store = store
        self._interval = refresh_interval
        self._by_workspace: dict[str, WorkspaceRules] = {}
        self._version = -1
        self._poller = Poller(
            self.load,
            interval=refresh_interval,
            name="alephant-limits-snapshot",
            failure="limits snapshot refresh failed, keeping the previous one",
        )

    def rules(self, workspace_id: str) -> WorkspaceRules:
        """The workspace's rules; an empty ``WorkspaceRules`` (shared) when it has none."""
        return self._by_workspace.get(workspace_id, _NONE)

    async def load(self) -> None:
        version = await self._store.version()
        if version == self._version:
            return
        budgets: dict[str, list[BudgetRule]] = {}
        limits: dict[str, list[LimitRule]] = {}
        for budget in await self._store.budgets():
            budgets.setdefault(budget.workspace_id, []).append(budget)
        for limit in await self._store.limits():
            limits.setdefault(limit.workspace_id, []).append(limit)
        self._by_workspace = {
            workspace: WorkspaceRules(tuple(budgets.get(workspace, ())), tuple(limits.get(workspace, ())))
            for workspace in budgets.keys() | limits.keys()
        }
        self._version = version

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
