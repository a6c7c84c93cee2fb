"""Stored Responses API answers (``store: true``): remembered at once, written to the store off the hot path.

A client may continue a response (``previous_response_id``) right after receiving it, before the store write
lands, so the newest answers are kept in memory too (per process, bounded); reads try memory first, then the
store. Writes go through one background task; a write the store refuses for a transient reason (down,
restarting) is retried with backoff (0.5 s doubling to 30 s) while the process runs, the answer readable from
memory meanwhile. At shutdown the writer gets ``stop_timeout`` seconds to drain; what is still unwritten then is
logged with its ids (those answers are lost: they lived in this process only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from .storage import ResponseStore, StoredResponse
from .storage.logs import refuses_values

__all__ = ["StoredResponses"]

_log = logging.getLogger("alephant.responses")
_MEMORY = 2048
_QUEUE = 10_000


class StoredResponses:
    def __init__(
        self, store: ResponseStore, *, memory: int = _MEMORY, retry_delay: float = 0.5, stop_timeout: float = 10.0
    ) -> None:
        self._store = store
        self._memory: OrderedDict[str, StoredResponse] = OrderedDict()
        self._limit = memory
        self._queue: asyncio.Queue[StoredResponse] = asyncio.Queue(_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._retry_delay = retry_delay
        self._stop_timeout = stop_timeout
        self._writing: StoredResponse | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write(), name="alephant-stored-responses")

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._stop_timeout):
                await self._queue.join()
        lost = [self._writing] if self._writing is not None else []  # before the cancel clears it
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            lost.append(self._queue.get_nowait())
        if lost:
            _log.error(
                "stored responses: the store stayed unavailable; %d answers were not stored: %s",
                len(lost),
                ", ".join(record.id for record in lost),
            )

    def remember(self, record: StoredResponse) -> None:
        self._memory[record.id] = record
        if len(self._memory) > self._limit:
            self._memory.popitem(last=False)
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            _log.warning("stored responses: write queue full; %s kept in memory only", record.id)

    async def recall(self, response_id: str, *, workspace_id: str) -> StoredResponse | None:
        record = self._memory.get(response_id)
        if record is not None:
            return record if record.workspace_id == workspace_id else None
        return await self._store.get(response_id, workspace_id=workspace_id)

    async def _write(self) -> None:
        while True:
            record = await self._queue.get()
            self._writing = record
            try:
                await self._save(record)
            finally:
                self._writing = None
                self._queue.task_done()

    async def _save(self, record: StoredResponse) -> None:
        delay = self._retry_delay
        while True:
            try:
                await self._store.save(record)
                return
            except Exception as exc:  # the answer was already returned; memory serves it while we retry
                if refuses_values(exc):  # no retry fixes it; an earlier attempt whose answer was lost may have landed
                    if await self._stored(record):
                        return
                    _log.error("stored responses: the store refused %s: %s", record.id, type(exc).__name__)
                    return
                _log.warning(
                    "stored responses: cannot write %s (%s); retrying in %.1f s", record.id, type(exc).__name__, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _stored(self, record: StoredResponse) -> bool:
        with contextlib.suppress(Exception):
            return await self._store.get(record.id, workspace_id=record.workspace_id) is not None
        return False
