"""The long-lived services of one gateway process, built in the app's lifespan and shared by every stage.

There is no module-level state: routes reach these through ``request.app.state.services``, stages through
their constructor.
"""

from __future__ import annotations

import dataclasses
import random

from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.registry import Upstreams

from .config import Settings
from .keyring import Keyring
from .ledger import Ledger
from .limits import Limiter
from .metrics import Metrics
from .payments.service import Payments
from .routing.health import Health
from .routing.routers import Routers
from .routing.store import RouterSync
from .runs import Runs
from .storage import Database, LogWriter
from .stored_responses import StoredResponses
from .telemetry import Telemetry

__all__ = ["Services"]


@dataclasses.dataclass(slots=True, kw_only=True)
class Services:
    settings: Settings
    database: Database
    catalog: Catalog
    prices: PriceBook
    keyring: Keyring
    upstreams: Upstreams
    log_writer: LogWriter
    runs: Runs  # runs, spans and traces, shared by the HTTP routes and the MCP tools
    ledger: Ledger  # tool/payment spend, revenue, adjustments; reports over them and the request log
    limiter: Limiter  # budgets, rate and concurrency limits: rules snapshot and counters backend
    metrics: Metrics  # Prometheus counters and histograms, observed at commit
    routers: Routers  # routers from configuration and the store, and one-deployment groups for direct calls
    router_sync: RouterSync  # keeps the stored routers in ``routers`` current
    health: Health  # per-deployment circuit, cooldown, latency and in-flight: feeds the router
    rng: random.Random = dataclasses.field(default_factory=random.Random)  # strategies' and backoff's draws
    stored_responses: StoredResponses
    payments: Payments  # paid endpoints' snapshot and seller, agents' wallets
    telemetry: Telemetry  # OpenTelemetry spans, body archival, webhook sinks: fed at commit, off the hot path
