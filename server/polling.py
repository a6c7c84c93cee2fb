"""One background loop for every snapshot the gateway keeps in memory, and for its periodic chores.

Keys, routers, price overrides and limits are read on the hot path from memory; each is refreshed by a
``Poller`` that runs its ``work`` every ``interval`` seconds (a version-row check, usually: cheap when nothing
changed). A failed pass is logged and the previous state kept — the store may be briefly down, and serving the
last snapshot beats failing requests — and the next pass tries again.

Usage::

    poller = Poller(snapshot.load, interval=1.0, name="alephant-keyring", failure="key snapshot refresh failed")
    poller.start()
    ...
    await poller.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Poller"]

_log = logging.getLogger("alephant.polling")


class Poller:
    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        *,
        interval: float,
        name: str,
        failure: str,
        first_wait: bool = True,
        traceback: bool = False,
    ) -> None:
        """``first_wait``: sleep before the first pass (the caller loaded once already); ``traceback``: log a
        failure with its traceback (a bug) rather than its type (an outage)."""
        self._work = work
        self._interval = interval
        self._name = name
        self._failure = failure
        self._first_wait = first_wait
        self._traceback = traceback
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        if self._first_wait:
            await asyncio.sleep(self._interval)
        while True:
            try:
                await self._work()
            except Exception as exc:
                if self._traceback:
                    _log.exception("%s", self._failure)
                else:
                    _log.warning("%s: %s", self._failure, type(exc).__name__)
            await asyncio.sleep(self._interval)
