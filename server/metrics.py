"""Prometheus metrics: observed once per request at commit, exposed at ``GET /metrics``.

Several workers: ``alephant serve --workers N`` empties ``data_dir/metrics`` and sets
``PROMETHEUS_MULTIPROC_DIR`` to it before any worker starts, so prometheus-client (which picks its mode when it
is first imported) keeps each worker's values in its own memory-mapped file, and ``/metrics``, whichever
worker answers, adds up every worker's files. One process keeps the values in its ``Metrics``' own registry.

Labels stay bounded: endpoint, provider and status come from small fixed sets, and a model is named only when
the catalog lists it (anything a client may invent after ``provider/`` is ``other``); never a key, run or
request id. Observing is a few dictionary lookups and counter increments, without I/O.

Cost is a counter of nano-USD. Prometheus values are float64, exact for integers up to 2^53 (about 9 million
USD per series and process), so the counter adds whole nano-USD exactly within that range.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from .errors import BudgetExceeded, GatewayError, RateLimited
from .routing.types import AttemptRecord
from .storage.records import LogRow

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "Metrics", "prepare_multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"
NONE = "none"
# Seconds: a cached or mock answer takes milliseconds, a long generation minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

KnownModel = Callable[[str, str], bool]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Series:
    """The children of one (endpoint, provider, model, status) label set."""

    requests: Counter
    latency: Histogram
    ttfb: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    cost: Counter


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty ``path`` of a previous run's files and point prometheus-client at it, before workers start."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


class Metrics:
    """The gateway's metrics; ``observe`` is called by the record stage for every committed request.

    Usage::

        metrics = Metrics(known_model=lambda provider, model: catalog.model_info(provider, model) is not None)
        metrics.observe(row, attempts, error)
        body = metrics.exposition()
    """

    def __init__(self, *, known_model: KnownModel) -> None:
        self._known_model = known_model
        self._multiprocess_dir = os.environ.get(MULTIPROC_ENV)  # the mode prometheus-client chose at import
        self._cache: dict[tuple[str, str, str, str], _Series] = {}
        self._registry = CollectorRegistry()
        labels = ("endpoint", "provider", "model")
        self.requests = Counter(
            "alephant_requests",
            "Requests, by endpoint, provider, model and HTTP status.",
            (*labels, "status"),
            registry=self._registry,
        )
        self.latency = Histogram(
            "alephant_request_latency_seconds",
            "Whole-request latency as the gateway measured it.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )
        self.ttfb = Histogram(
            "alephant_time_to_first_byte_seconds",
            "Time until the first byte of the answer went to the client.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )
        self.tokens = Counter(
            "alephant_tokens",
            "Tokens, by provider, model and type (prompt, completion).",
            ("provider", "model", "type"),
            registry=self._registry,
        )
        self.cost = Counter(
            "alephant_cost_nano_usd",
            "Cost of requests in nano-USD (1e-9 USD).",
            ("provider", "model"),
            registry=self._registry,
        )
        self.upstream_errors = Counter(
            "alephant_upstream_errors",
            "Failed upstream attempts, by provider and error code.",
            ("provider", "code"),
            registry=self._registry,
        )
        self.limiter_rejections = Counter(
            "alephant_limiter_rejections",
            "Requests refused by a budget (402) or a rate/concurrency limit (429).",
            ("status", "code"),
            registry=self._registry,
        )

    def _model(self, provider: str | None, model: str | None) -> str:
        if provider is None or model is None:
            return NONE
        return f"{provider}/{model}" if self._known_model(provider, model) else OTHER

    def _series(self, endpoint: str, provider: str, model: str, status: str) -> _Series:
        # ``labels()`` takes a lock and hashes its strings on every call; each label set's children are looked
        # up once. The key is made of bounded labels only, so this cache is bounded too.
        key = (endpoint, provider, model, status)
        series = self._cache.get(key)
        if series is None:
            series = self._cache[key] = _Series(
                requests=self.requests.labels(endpoint, provider, model, status),
                latency=self.latency.labels(endpoint, provider, model),
                ttfb=self.ttfb.labels(endpoint, provider, model),
                prompt_tokens=self.tokens.labels(provider, model, "prompt"),
                completion_tokens=self.tokens.labels(provider, model, "completion"),
                cost=self.cost.labels(provider, model),
            )
        return series

    def observe(self, row: LogRow, attempts: list[AttemptRecord], error: GatewayError | None) -> None:
        series = self._series(
            row.endpoint, row.provider or NONE, self._model(row.provider, row.upstream_model), str(row.http_status)
        )
        series.requests.inc()
        series.latency.observe(row.latency_ms / 1000)
        if row.ttfb_ms is not None:
            series.ttfb.observe(row.ttfb_ms / 1000)
        if row.prompt_tokens:
            series.prompt_tokens.inc(row.prompt_tokens)
        if row.completion_tokens:
            series.completion_tokens.inc(row.completion_tokens)
        if row.cost_nano:
            series.cost.inc(row.cost_nano)
        for attempt in attempts:
            if attempt.error is not None:
                self.upstream_errors.labels(attempt.provider, attempt.error).inc()
        if isinstance(error, BudgetExceeded | RateLimited):
            self.limiter_rejections.labels(str(error.status), error.code).inc()

    def exposition(self) -> bytes:
        """The text format: every worker's values in multi-process mode, else this process's."""
        if self._multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self._registry)
