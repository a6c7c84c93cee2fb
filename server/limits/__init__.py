"""Budgets, rate limits and concurrency limits, exact across workers and replicas (issue 6).

    types.py          rules, charges, admissions and outcomes: the shared vocabulary
    store.py          budget and limit definitions in the store (bumps ``state_version('limits')``)
    snapshot.py       the in-memory rules the hot path reads, reloaded when the version moves
    spent.py          what a budget already spent, read from the store to seed a missing counter
    backend.py        the backend interface; ``memory.py`` (one process) and ``redis_backend.py`` (shared)
    _scripts.py       the Redis backend's Lua scripts: one call per admission, one per commit
    limiter.py        admission, commit, seeding, lease renewal; ``check_budget`` and ``add_spend``
    stage.py          ``LimitsStage`` in the pipeline (imported by ``server.stages``, not here)
    alerts.py         a soft budget's first crossing per window, logged once (used by the stage)

Money arithmetic (periods, upper bounds, what fits) lives in ``finance.budgets``.
"""

from __future__ import annotations

from ..config import Settings
from ..storage import Database
from .backend import LimitBackend
from .limiter import BudgetStatus, Limiter, LimitsUnavailable, Scopes
from .memory import MemoryBackend
from .redis_backend import RedisBackend
from .snapshot import LimitsSnapshot
from .store import LimitStore

__all__ = [
    "BudgetStatus",
    "LimitBackend",
    "LimitStore",
    "Limiter",
    "LimitsSnapshot",
    "LimitsUnavailable",
    "Scopes",
    "build_limiter",
]


def build_limiter(settings: Settings, database: Database) -> Limiter:
    """The limiter on Redis when ``redis_url`` is set, else on the in-process backend; its snapshot not loaded."""
    backend: LimitBackend
    if settings.redis_url is not None:
        backend = RedisBackend(settings.redis_url.get_secret_value(), prefix=settings.limits.redis_prefix)
    else:
        backend = MemoryBackend()
    snapshot = LimitsSnapshot(LimitStore(database), refresh_interval=settings.key_refresh_interval)
    return Limiter(snapshot=snapshot, backend=backend, database=database, settings=settings.limits)
