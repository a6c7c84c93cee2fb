"""Budgets, rate limits and concurrency limits, exact across workers and replicas (issue 6).

    types.py          rules, charges, admissions and outcomes: the shared vocabulary
    store.py          budget and limit definitions in the store (bumps ``state_version('limits')``)
    snapshot.py       the in-memory rules the hot path reads, reloaded when the version moves
    spent.py          what a budget already spent, read from the store to seed a missing counter
    backend.py        the backend interface; ``memory.py`` (one process) and ``redis_backend.py`` (shared)
    resp.py           the Redis backend's own pipelined client (the scripts are its only commands)
    _scripts.py       the Redis backend's Lua scripts: one call per admission, one per commit
    limiter.py        admission, commit, seeding, lease renewal; ``check_budget`` and ``add_spend``
    build.py          ``build_limiter``: the limiter on Redis or in process, as configured
    stage.py          ``LimitsStage`` in the pipeline (imported by ``server.stages``, not here)
    alerts.py         a soft budget's first crossing per window, logged once (used by the stage)

Money arithmetic (periods, upper bounds, what fits) lives in ``finance.budgets``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import LimitBackend
    from .build import build_limiter
    from .limiter import BudgetStatus, Limiter, LimitsUnavailable, Scopes
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

# Names load their module on first use (PEP 562), so ``server.limits.types`` (the vocabulary the CLI's option
# choices come from) imports without the limiter, the store and redis behind it.
_MODULE_OF = {
    "BudgetStatus": "limiter",
    "Limiter": "limiter",
    "LimitsUnavailable": "limiter",
    "Scopes": "limiter",
    "LimitBackend": "backend",
    "LimitStore": "store",
    "LimitsSnapshot": "snapshot",
    "build_limiter": "build",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
