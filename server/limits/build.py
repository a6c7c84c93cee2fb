"""``build_limiter``: the limiter on the backend the settings name."""

from __future__ import annotations

from ..config import Settings
from ..storage import Database
from .backend import LimitBackend
from .limiter import Limiter
from .memory import MemoryBackend
from .redis_backend import RedisBackend
from .snapshot import LimitsSnapshot
from .store import LimitStore

__all__ = ["build_limiter"]


def build_limiter(settings: Settings, database: Database) -> Limiter:
    """The limiter on Redis when ``redis_url`` is set, else on the in-process backend; its snapshot not loaded."""
    backend: LimitBackend
    if settings.redis_url is not None:
        backend = RedisBackend(settings.redis_url.get_secret_value(), prefix=settings.limits.redis_prefix)
    else:
        backend = MemoryBackend()
    snapshot = LimitsSnapshot(LimitStore(database), refresh_interval=settings.key_refresh_interval)
    return Limiter(snapshot=snapshot, backend=backend, database=database, settings=settings.limits)
