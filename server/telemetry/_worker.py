"""A bounded queue drained by one daemon thread: how exporters whose libraries block (boto3, the OTel SDK)
take work off the request path.

``put`` never blocks and never raises: when the queue is full the item is refused (``False``) and counted,
because an exporter falling behind must cost the request nothing. ``close`` drains what was queued, then joins.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")

_log = logging.getLogger("alephant.telemetry")
_STOP = object()


class Worker(Generic[T]):
    """Usage::

    worker = Worker("archive", handle=write_one, size=1000)
    worker.put(item)   # from the event loop: O(1), never blocks
    worker.close()     # at shutdown (in a thread): handles everything queued, then returns
    """

    def __init__(self, name: str, *, handle: Callable[[T], None], size: int) -> None:
        self.name = name
        self._handle = handle
        self._queue: queue.Queue[object] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name=f"alephant-{name}", daemon=True)
        self._thread.start()
        self.refused = 0  # items the full queue turned away
        self.failed = 0  # items whose handler raised

    def put(self, item: T) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.refused += 1
            return False
        return True

    def close(self) -> None:
        self._queue.put(_STOP)  # blocks only while the queue is full, which the thread is draining
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._handle(item)  # type: ignore[arg-type]
            except Exception:
                self.failed += 1
                _log.exception("%s: an item could not be handled", self.name)
