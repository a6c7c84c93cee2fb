"""One spool directory per live process, so several workers or replicas on one machine never share a spool.

A process claims the first slot (``spool/0``, ``spool/1``, ...) whose lock file it can ``flock``; the kernel
drops the lock when the process exits, so a restarted worker takes over a dead one's slot and replays whatever
rows it left behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["SpoolSlot", "claim_spool_slot"]

_MAX_SLOTS = 256


class SpoolSlot:
    """A claimed spool directory; ``release`` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def claim_spool_slot(base: Path) -> SpoolSlot:
    for index in range(_MAX_SLOTS):
        path = base / str(index)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return SpoolSlot(path, fd)
    raise RuntimeError(f"all {_MAX_SLOTS} spool slots under {base} are held by running processes")
