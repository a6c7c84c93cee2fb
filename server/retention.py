"""Log retention: a background task that deletes request-log rows and spans older than ``log.retention_days``.

It runs once at start-up and then every ``log.retention_interval`` seconds (hourly by default), deleting in
batches (``LogSearch.prune``), never on the request path. Several workers or replicas may each run it: the
deletes are idempotent, so the only cost is a repeated, cheap query.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from .polling import Poller
from .storage.log_search import LogSearch

__all__ = ["Retention"]

_log = logging.getLogger("alephant.retention")


class Retention:
    """Usage: ``Retention(LogSearch(db), days=30, interval=3600).start()``, then ``await retention.stop()``."""

    def __init__(self, search: LogSearch, *, days: int, interval: float) -> None:
        self._search = search
        self._days = days
        self._interval = interval
        self._poller = Poller(
            self.prune_once,
            interval=interval,
            name="alephant-log-retention",
            failure="log retention pass failed",
            first_wait=False,
        )

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def prune_once(self) -> int:
        cutoff = datetime.now(tz=UTC) - timedelta(days=self._days)
        removed = await self._search.prune(cutoff)
        if removed:
            _log.info("log retention: deleted %d request-log rows older than %s", removed, cutoff.isoformat())
        return removed
