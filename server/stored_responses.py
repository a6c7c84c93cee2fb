"""Stored Responses API answers (``store: true``): remembered at once, written to the store off the hot path.

A client may continue a response (``previous_response_id``) right after receiving it, before the store write
lands, so the newest answers are kept in memory too (per process, bounded); reads try memory first, then the
store. Writes go through one background task; a failed write is logged and the answer stays readable from
memory until it is evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from .storage import ResponseStore, StoredResponse

__all__ = ["StoredResponses"]

_log = logging.getLogger("alephant.responses")
_MEMORY = 2048
_QUEUE = 10_000


class StoredResponses:
    def __init__(self, store: ResponseStore, *, memory: int = _MEMORY) -> None:
        self._store = store
        self._memory: OrderedDict[str, StoredResponse] = OrderedDict()
        self._limit = memory
        self._queue: asyncio.Queue[StoredResponse] = asyncio.Queue(_QUEUE)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write(), name="alephant-stored-responses")

    async def stop(self) -> None:
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
            try:
                await self._store.save(record)
            except Exception as exc:  # the answer was already returned; keep serving it from memory
                _log.warning("stored responses: cannot write %s: %s", record.id, type(exc).__name__)
            finally:
                self._queue.task_done()
