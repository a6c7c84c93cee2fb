"""What makes scenario (b) the full governed path, set up through the gateway's own admin API (master key).

Two workspaces on the same governed gateway, so the limiter's cost is the only difference between their rows:

- ``bench-limits``: a monthly workspace budget, an rpm limit and a concurrency limit, all far above what a run
  can reach, so none ever refuses yet every request pays one admission Lua call and one commit on Redis;
- ``bench-open``: no rules (the limits stage costs one dict lookup and no backend call).

Each gets a virtual key limited to ``bench/*`` (the policy stage checks it), never the master key. The admin calls
use the standard library so that ``make bench`` needs no test extras.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import redis

__all__ = [
    "BUDGET_USD",
    "CONCURRENCY",
    "LIMITED",
    "OPEN",
    "RPM",
    "Tenants",
    "budget_window",
    "drop_redis_keys",
    "provision",
    "redis_problem",
]

LIMITED, OPEN = "bench-limits", "bench-open"
BUDGET_USD = "1000000"  # a million dollars a month: a run spends cents
RPM = 1_000_000_000
CONCURRENCY = 10_000  # above any connection count the harness opens (wrk -c64, the open-loop client's spares)


@dataclass(frozen=True)
class Tenants:
    limited: str  # secret of the key in the workspace with three rules
    open: str  # secret of the key in the workspace without rules
    budget_id: str


def _admin(base: str, master_key: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def provision(base: str, master_key: str) -> Tenants:
    """Create both workspaces, their keys and the limited workspace's budget and limits; the keys and rules take
    effect within the gateway's ``key_refresh_interval``."""
    secrets = {}
    for workspace in (LIMITED, OPEN):
        _admin(base, master_key, "POST", "/admin/workspaces", {"id": workspace})
        key = {"name": "bench", "models": ["bench/*"]}
        secrets[workspace] = _admin(base, master_key, "POST", f"/admin/keys?workspace_id={workspace}", key)["secret"]
    scoped = f"?workspace_id={LIMITED}"
    budget = {"scope": "workspace", "period": "monthly", "limit_usd": BUDGET_USD}
    budget_id = _admin(base, master_key, "POST", "/admin/budgets" + scoped, budget)["id"]
    for kind, limit in (("rpm", RPM), ("concurrency", CONCURRENCY)):
        _admin(base, master_key, "POST", "/admin/limits" + scoped, {"scope": "workspace", "kind": kind, "limit": limit})
    return Tenants(limited=secrets[LIMITED], open=secrets[OPEN], budget_id=budget_id)


def budget_window(base: str, master_key: str, budget_id: str, *, settle: float = 10.0) -> dict[str, float]:
    """The limited workspace's budget window as the limiter holds it, once nothing is reserved any more (or after
    ``settle`` seconds): proof that the calls went through Redis (spent grew) and that every reservation was
    committed. ``settled_s`` says how long the last reservations took to go after the load stopped."""
    started = time.monotonic()
    while True:
        current = _admin(base, master_key, "GET", f"/admin/budgets/{budget_id}?workspace_id={LIMITED}")["current"]
        waited = time.monotonic() - started
        if int(current["reserved_nano"]) == 0 or waited >= settle:
            break
        time.sleep(0.2)
    return {
        "spent_nano": int(current["spent_nano"]),
        "reserved_nano": int(current["reserved_nano"]),
        "settled_s": round(waited, 1),
    }


def redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` cannot serve the limits, or None when it answers."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer ({exc}); start it (make services) or pass --redis URL"
    return None


def drop_redis_keys(url: str, prefix: str) -> int:
    """Delete the run's counters (every key under its own prefix); other users of the Redis are untouched."""
    with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10) as client:
        names = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(names), 500):
            client.delete(*names[start : start + 500])
    return len(names)
