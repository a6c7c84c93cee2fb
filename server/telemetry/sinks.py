"""Webhook sinks: request-log rows POSTed as JSON arrays, in order, with retries, through an on-disk spool.

Every row goes through the sink's spool file (``<data_dir>/sinks/<name>/<slot>/events.jsonl``): ``submit``
only appends to memory; the sink's task moves memory to the end of the file every ``flush_interval`` (or once
``batch_size`` rows wait) and then sends the file from its acknowledged offset in batches of ``batch_size``. The
offset is saved after each 2xx, and the file is removed once everything in it was acknowledged. Because rows
only ever join the end of the file and leave from its front, a sink that is down receives everything, in
order, once it is back, and a restarted gateway resumes where the last one stopped.

Failures: a connection error, a timeout, a 408, 429 or 5xx is retried with exponential backoff and full jitter
(0.5 s doubling, capped at ``max_backoff``); any other status means the receiver refuses that batch for good,
so it is set aside in ``rejected.jsonl`` (and logged) rather than blocking everything behind it. Delivery is at
least once: a gateway that dies between a delivery and saving its offset sends that batch again, so receivers
dedupe on ``request_id``. Shutdown moves memory to the spool and tries one last delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import orjson

from ..storage.records import LogRow

__all__ = ["Sink", "sink_name"]

_log = logging.getLogger("alephant.sinks")

EVENTS_FILE = "events.jsonl"
OFFSET_FILE = "offset"
REJECTED_FILE = "rejected.jsonl"
FIRST_BACKOFF = 0.5
SHUTDOWN_DELIVERY_SECONDS = 5.0
_RETRIED = frozenset({408, 429})


def sink_name(url: str, name: str | None) -> str:
    return name or "sink-" + hashlib.sha256(url.encode()).hexdigest()[:12]


class Sink:
    """Usage::

    sink = Sink(url, directory=Path(".alephant/sinks/audit/0"), batch_size=100, flush_interval=1.0)
    sink.start()
    sink.submit(row)     # from the request path: one deque append
    await sink.stop()    # at shutdown: spools what is in memory, tries one last delivery
    """

    def __init__(
        self,
        url: str,
        *,
        directory: Path,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.directory = directory
        self._events = directory / EVENTS_FILE
        self._offset_file = directory / OFFSET_FILE
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._pending: deque[LogRow] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._failures = 0
        self._stopping = False
        self.delivered = 0  # rows acknowledged by the receiver
        self.rejected = 0  # rows the receiver refused for good
        directory.mkdir(parents=True, exist_ok=True)
        self._end_torn_line()

    def submit(self, row: LogRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"alephant-sink-{self.directory.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task])  # a delivery in flight finishes (bounded by its timeout)
            self._task = None
        self._spill()
        try:
            async with asyncio.timeout(SHUTDOWN_DELIVERY_SECONDS):
                await self._deliver()
        except TimeoutError:
            _log.warning("sink %s: shutdown delivery timed out; the rest stays spooled in %s", self.url, self._events)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def backlog(self) -> int:
        """Bytes spooled and not yet acknowledged (for tests and the operator)."""
        return max(self._size() - self._read_offset(), 0)

    async def _run(self) -> None:
        # Deliver first, then wait: what a previous process left in the spool goes out at start-up.
        loop = asyncio.get_running_loop()
        retry_at = 0.0
        while not self._stopping:
            self._spill()
            if loop.time() >= retry_at:  # while backing off, rows keep joining the spool and nothing is sent
                if await self._deliver():
                    self._failures = 0
                else:
                    self._failures += 1
                    ceiling = min(self._max_backoff, FIRST_BACKOFF * 2 ** min(self._failures - 1, 30))
                    retry_at = loop.time() + self._rng.uniform(0, ceiling)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval):
                    await self._wakeup.wait()
            self._wakeup.clear()

    def _spill(self) -> None:
        if not self._pending:
            return
        rows = [self._pending.popleft() for _ in range(len(self._pending))]
        data = b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
        with self._events.open("ab") as out:
            out.write(data)

    async def _deliver(self) -> bool:
        """Send the spool from its offset until it is empty (True) or a delivery fails (False)."""
        offset = self._read_offset()
        while True:
            lines, after = self._read(offset)
            if not lines:
                self._reset()
                return True
            outcome = await self._post(b"[" + b",".join(line.rstrip(b"\n") for line in lines) + b"]")
            if outcome == "retry":
                return False
            if outcome == "refused":
                with (self.directory / REJECTED_FILE).open("ab") as out:
                    out.write(b"".join(lines))
                self.rejected += len(lines)
            else:
                self.delivered += len(lines)
            offset = after
            self._write_offset(offset)

    async def _post(self, payload: bytes) -> str:
        assert self._session is not None, "start() the sink first"
        try:
            async with self._session.post(self.url, data=payload, headers=self._headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if self._failures == 0:
                _log.warning("sink %s unreachable (%s); rows wait in %s", self.url, type(exc).__name__, self._events)
            return "retry"
        if 200 <= status < 300:
            return "ok"
        if status in _RETRIED or status >= 500:
            if self._failures == 0:
                _log.warning("sink %s answered %d; retrying with backoff", self.url, status)
            return "retry"
        _log.error("sink %s refused a batch with %d; it is kept in %s", self.url, status, REJECTED_FILE)
        return "refused"

    def _read(self, offset: int) -> tuple[list[bytes], int]:
        lines: list[bytes] = []
        try:
            with self._events.open("rb") as spool:
                spool.seek(offset)
                while len(lines) < self._batch_size:
                    line = spool.readline()
                    if not line.endswith(b"\n"):
                        break
                    lines.append(line)
                    offset += len(line)
        except FileNotFoundError:
            pass
        return lines, offset

    def _size(self) -> int:
        try:
            return self._events.stat().st_size
        except FileNotFoundError:
            return 0

    def _read_offset(self) -> int:
        try:
            return int(self._offset_file.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def _write_offset(self, offset: int) -> None:
        partial = self._offset_file.with_suffix(".tmp")
        partial.write_text(str(offset))
        os.replace(partial, self._offset_file)

    def _reset(self) -> None:
        # Everything in the file was acknowledged: start a new one (rows are only appended by this task).
        self._events.unlink(missing_ok=True)
        self._offset_file.unlink(missing_ok=True)

    def _end_torn_line(self) -> None:
        # A crash mid-append leaves a partial last line, never acknowledged to anyone: cut it off.
        try:
            with self._events.open("rb+") as spool:
                data = spool.read()
                if data and not data.endswith(b"\n"):
                    spool.truncate(data.rfind(b"\n") + 1)
        except FileNotFoundError:
            pass
