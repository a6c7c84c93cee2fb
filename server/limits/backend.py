"""The one interface both limits backends implement: admit, commit, renew, peek, spend, seed.

Every operation on one call's counters is atomic: the in-process backend runs each without an ``await`` inside
(so no other request interleaves on the event loop), the Redis backend runs each as one Lua script.

Usage::

    outcome = await backend.admit(admission, now_ms=now, lease_ttl_ms=30_000)
    if outcome.missing:            # budget counters never seen: seed them from the store, then try again
        await backend.seed(charge.key, spent_nano, expire_at=charge.window.end)
    ...
    await backend.commit(admission, actual_nano=cost, actual_tokens=tokens, now_ms=now)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from .types import Admission, BudgetCharge, BudgetCounter, Outcome

__all__ = ["LimitBackend", "counter_expiry"]

# A budget counter outlives its window by a day, so a commit that lands just after the boundary still finds it.
_COUNTER_GRACE_SECONDS = 86_400


def counter_expiry(end: datetime | None, now_ms: int) -> int:
    """Seconds a budget counter should live from now (0: forever, for a ``total`` budget)."""
    if end is None:
        return 0
    return max(1, int(end.timestamp()) - now_ms // 1000 + _COUNTER_GRACE_SECONDS)


class LimitBackend(Protocol):
    async def admit(self, admission: Admission, *, now_ms: int, lease_ttl_ms: int) -> Outcome:
        """Check every charge; take them all (reserve, count, lease) or none."""
        ...

    async def commit(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> None:
        """Release the reservations and leases of ``admission``, add the actual cost, correct tpm windows."""
        ...

    def commit_now(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> bool:
        """``commit`` done in place when this backend needs no I/O for it (True); False leaves it undone.

        The limiter commits a finished call in a task so that the answer does not wait for a round trip; a
        backend in this process has no round trip, and a task would only defer the release of its counters.
        """
        ...

    async def renew(self, admissions: Sequence[Admission], *, now_ms: int, lease_ttl_ms: int) -> None:
        """Push the expiry of these calls' reservations and leases ``lease_ttl_ms`` past now."""
        ...

    async def peek(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> tuple[list[BudgetCounter], list[int]]:
        """Current counters (dropping expired reservations), and the indexes of those missing (to seed)."""
        ...

    async def spend(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> list[int]:
        """Add each charge's amount to its spent counter; returns the indexes missing (nothing added then)."""
        ...

    async def seed(self, key: str, spent: int, *, ttl_seconds: int) -> None:
        """Create a budget counter with ``spent`` unless it already exists (another replica seeded it first)."""
        ...

    async def aclose(self) -> None: ...
