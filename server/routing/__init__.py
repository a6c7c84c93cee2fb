"""Routing and resilience: routers and their strategies, deployment health, and the attempt loop.

    types.py       Deployment, Group, Plan, AttemptRecord: the vocabulary shared by the modules below
    routers.py     routers from configuration: model name -> deployment group; direct calls as one-deployment groups
    strategies.py  the order a group's deployments are tried in (weighted, round-robin, least-busy, ...)
    health.py      per-deployment circuit breaker, 429 cooldown (per key), EWMA latency, in-flight counts
    attempts.py    retries, backoff, fallback by failure class and the deadline, around one send
    probes.py      optional active probes of router deployments
    passthrough.py direct provider passthrough (``/{provider}/...``)

Health feeds the strategies and the attempt loop; the dispatcher only sends (``server.stages.dispatch``).
"""

from __future__ import annotations

from .types import AttemptRecord, Deployment, Group, Plan

__all__ = ["AttemptRecord", "Deployment", "Group", "Plan"]
