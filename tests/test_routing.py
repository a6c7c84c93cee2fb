"""Routing and resilience: strategies, health, retries, fallbacks, key pools, headers and log rows.

Unit tests drive the pieces in-process (fake clock, seeded draws); end-to-end tests run one real gateway with
several fake OpenAI upstreams as separate providers. ``ChaosOpenAI`` is ``FakeOpenAI`` with its fault
injection chosen per request by a plan (the same ``x-fake-*`` controls, so the faults are protocol-faithful).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from providers.catalog import Resolved
from providers.errors import TransportError
from providers.types import ProviderSpec, UpstreamRequest, UpstreamResponse
from server.config import HealthSettings, RetrySettings
from server.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from server.routing.attempts import backoff, classify, retry_after
from server.routing.health import Health
from server.routing.passthrough import upstream_url
from server.routing.probes import Prober
from server.routing.routers import Router, Routers
from server.routing.strategies import Cheapest, LeastBusy, LowestLatency, Ordered, RoundRobin, Weighted
from server.routing.types import Deployment, Group
from tests.conftest import MASTER_KEY, Gateway, free_port, running_gateway
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, error_response

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello there"}]

# -- unit: the pieces ---------------------------------------------------------------------------------------------


def _deployment(name: str, *, weight: float = 1.0, priority: int = 0, cost: int | None = None) -> Deployment:
    spec = ProviderSpec(id=name, base_url="http://x", api_key="k")
    return Deployment(id=name, target=Resolved(spec, "m"), weight=weight, priority=priority, unit_cost=cost)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_reads_every_provider_header() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "Thu, 26 Nov 2026 12:00:05 GMT"}, now=now) == 5.0
    # OpenAI: durations; the exhausted limit decides.
    openai = {
        "x-ratelimit-reset-requests": "1m2.5s",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "20ms",
        "x-ratelimit-remaining-tokens": "500",
    }
    assert retry_after(openai) == 62.5
    # Anthropic: RFC 3339 timestamps.
    later = (now + timedelta(seconds=7)).isoformat().replace("+00:00", "Z")
    assert retry_after({"anthropic-ratelimit-requests-reset": later}, now=now) == 7.0
    assert retry_after({"x-other": "1"}) is None


def test_failure_classes() -> None:
    def upstream(status: int, message: str = "nope", code: str | None = None) -> UpstreamError:
        return UpstreamError(message, provider="p", status=status if status < 500 else 502, code=code)

    assert classify(upstream(429), 429) == "rate_limit"
    assert classify(upstream(503), 503) == "server_error"
    assert classify(upstream(409), 409) == "server_error"
    assert classify(upstream(408), 408) == "timeout"
    assert classify(UpstreamTimeout("slow", provider="p"), None) == "timeout"
    assert classify(UpstreamUnavailable("refused", provider="p"), None) == "unavailable"
    too_long = upstream(400, "This model's maximum context length is 8192 tokens", "context_length_exceeded")
    assert classify(too_long, 400) == "context_window"
    assert classify(upstream(400, "Output blocked by content filtering policy", "content_filter"), 400) == (
        "content_policy"
    )
    assert classify(upstream(400, "messages: field required"), 400) is None
    assert classify(upstream(401), 401) is None


def test_backoff_is_full_jitter_capped() -> None:
    settings = RetrySettings(backoff_base_ms=100, backoff_max_ms=1000)
    rng = random.Random(1)
    for round_number, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        draws = [backoff(round_number, settings, rng) for _ in range(500)]
        assert min(draws) >= 0 and max(draws) <= ceiling
        assert max(draws) > ceiling * 0.8  # spread over the whole range, not a fixed delay


def test_circuit_opens_half_opens_and_closes() -> None:
    clock = Clock()
    health = Health(HealthSettings(min_requests=4, error_ratio=0.5, open_seconds=5, window_seconds=30), clock=clock)
    for ok in (True, False, True, False):
        health.success("d", 10) if ok else health.failure("d")
    assert health.state("d") == "open" and not health.admits("d")
    clock.now += 5
    assert health.state("d") == "half-open" and health.admits("d")
    probe = health.start("d")
    assert probe and not health.admits("d")  # one probe at a time
    health.release("d", probe=probe)
    health.failure("d")  # the probe failed: open again, for another open_seconds
    assert health.state("d") == "open"
    clock.now += 5
    probe = health.start("d")
    health.success("d", 12)
    health.release("d", probe=probe)
    assert health.state("d") == "closed" and health.report("d")["error_ratio"] == 0
    # Old outcomes leave the window.
    for _ in range(3):
        health.failure("d")
    clock.now += 31
    health.success("d", 10)
    assert health.state("d") == "closed" and health.report("d")["outcomes_in_window"] == 1


def test_cooldown_is_per_key() -> None:
    clock = Clock()
    health = Health(HealthSettings(cooldown_ms=1000), clock=clock)
    health.cool("d", 0, 2.0)
    assert health.free_key("d", 3) == 1
    health.cool("d", 1, None)  # no reset header: cooldown_ms
    health.cool("d", 2, 0.5)
    assert health.free_key("d", 3) is None and health.usable_in("d", 3) == pytest.approx(0.5)
    clock.now += 1.0
    assert health.free_key("d", 3) == 1
    assert health.report("d", 3)["keys_cooling"] == 1


def test_weighted_shares_within_tolerance() -> None:
    strategy = Weighted(random.Random(7))
    group = [_deployment("a", weight=6), _deployment("b", weight=3), _deployment("c", weight=1)]
    health = Health(HealthSettings())
    firsts = collections.Counter(strategy.order(group, health)[0].id for _ in range(20_000))
    for name, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert firsts[name] / 20_000 == pytest.approx(share, abs=0.015)


def test_round_robin_cheapest_and_ordered() -> None:
    health = Health(HealthSettings())
    group = [_deployment("a", priority=2, cost=900), _deployment("b", priority=1, cost=None), _deployment("c", cost=5)]
    rr = RoundRobin()
    assert [rr.order(group, health)[0].id for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert [d.id for d in Cheapest().order(group, health)] == ["c", "a", "b"]  # unknown price last
    assert [d.id for d in Ordered().order(group, health)] == ["c", "b", "a"]


def test_least_busy_and_lowest_latency_read_health() -> None:
    health = Health(HealthSettings(latency_alpha=0.5))
    a, b, c = _deployment("a"), _deployment("b"), _deployment("c")
    for _ in range(3):
        health.start("a")
    health.start("b")
    assert [d.id for d in LeastBusy(random.Random(1)).order([a, b, c], health)] == ["c", "b", "a"]
    latency = LowestLatency(random.Random(3))
    fresh = Health(HealthSettings())
    fresh.success("a", 50)
    assert latency.order([a, b], fresh)[0].id == "b"  # unmeasured first: explored once
    fresh.success("b", 5)
    firsts = collections.Counter(latency.order([a, b], fresh)[0].id for _ in range(1000))
    assert firsts["b"] == 1000  # of two, the faster always wins the two choices
    fresh.success("c", 20)
    firsts = collections.Counter(latency.order([a, b, c], fresh)[0].id for _ in range(3000))
    # Power of two choices over three: the fastest wins every pair it is in (2/3), the slowest never.
    assert firsts["b"] / 3000 == pytest.approx(2 / 3, abs=0.04) and firsts["a"] == 0


def test_passthrough_url_joins_the_overlap_once() -> None:
    assert upstream_url("https://api.openai.com/v1", "v1/files", "") == "https://api.openai.com/v1/files"
    assert upstream_url("https://proxy.example/openai/v1", "v1/files", "a=1") == (
        "https://proxy.example/openai/v1/files?a=1"
    )
    assert upstream_url("https://api.anthropic.com/v1", "v1/messages", "") == "https://api.anthropic.com/v1/messages"
    assert upstream_url("http://h:1", "v1/models", "") == "http://h:1/v1/models"


# -- end to end: fakes as providers -------------------------------------------------------------------------------

Plan = Callable[[web.Request], dict[str, Any]]


class ChaosOpenAI(FakeOpenAI):
    """``FakeOpenAI`` whose fault controls are chosen per request: ``plan(request)`` returns ``x-fake-*``
    headers to apply (or ``{"respond": web.Response}`` to answer directly)."""

    def __init__(self, plan: Plan | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.plan: Plan = plan or (lambda request: {})
        self.count_lock = threading.Lock()
        self.seen_keys: collections.Counter[str] = collections.Counter()

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        with self.count_lock:
            self.seen_keys[request.headers.get("authorization", "")] += 1
            extra = dict(self.plan(request))
        respond = extra.pop("respond", None)
        if respond is not None:
            response: web.StreamResponse = respond
            return response
        headers = CIMultiDict(request.headers)
        headers.update(extra)
        return await super()._chat_completions(request.clone(headers=headers))


_SHORT_RESET = {"retry-after-ms": "50", "x-ratelimit-reset-requests": "50ms", "x-ratelimit-remaining-requests": "0"}


def storm_plan(seed: int) -> Plan:
    """The flaky provider of the 1,000-request run: 429 storms with retry-after, 5xx bursts, answers slower
    than the upstream timeout, connections reset before the answer or as the stream starts.

    Storms are timed from its first request: every request is rate limited from 1.0 s to 2.5 s, and every
    one fails with a 5xx from 3.5 s to 4.5 s; around them about one request in four fails at random.
    """
    rng = random.Random(seed)
    first: list[float] = []

    def plan(request: web.Request) -> dict[str, Any]:
        now = time.monotonic()
        first.append(now) if not first else None
        since = now - first[0]
        if 1.0 <= since < 2.5:
            return {"x-fake-status": "429"}  # a storm: rate limited, retry-after: 1
        if 3.5 <= since < 4.5:
            return {"x-fake-status": "503"}  # a 5xx burst
        draw = rng.random()
        if draw < 0.04:  # a short rate limit, as OpenAI sends them: a cooldown of 50 ms
            limited = error_response(429, "Rate limit reached", code="rate_limit_exceeded", headers=_SHORT_RESET)
            return {"respond": limited}
        if draw < 0.14:
            return {"x-fake-status": rng.choice(["500", "502", "503"])}
        if draw < 0.17:
            return {"x-fake-delay": "2"}  # past the 1 s upstream timeout
        if draw < 0.20:
            return {"x-fake-close": "1"}  # reset before any answer
        if draw < 0.25:
            return {"x-fake-close-after": "0"}  # a stream reset before its first event
        return {}

    return plan


def mild_plan(seed: int) -> Plan:
    rng = random.Random(seed)
    return lambda request: {"x-fake-status": "503"} if rng.random() < 0.03 else {}


def pool_plan(bad_key: str, real_key: str) -> Plan:
    """Key A is rate limited (with OpenAI's reset headers), key B is fine; both map to the fake's real key."""

    def plan(request: web.Request) -> dict[str, Any]:
        if request.headers.get("authorization") == f"Bearer {bad_key}":
            return {"x-fake-status": "429", "authorization": f"Bearer {real_key}"}
        return {"authorization": f"Bearer {real_key}"}

    return plan


def too_long(request: web.Request) -> dict[str, Any]:
    message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
    return {"respond": error_response(400, message, code="context_length_exceeded", param="messages")}


class Fakes:
    def __init__(self) -> None:
        self.a = FakeOpenAI()
        self.b = FakeOpenAI()
        self.flaky = ChaosOpenAI(storm_plan(11))
        self.steady = ChaosOpenAI(mild_plan(12))
        self.backup = FakeOpenAI()
        self.pooled = ChaosOpenAI()
        self.pooled.plan = pool_plan("pool-key-a", self.pooled.api_key)
        self.tiny = ChaosOpenAI(too_long)
        self.anthropic = FakeAnthropic()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Fakes:
        for fake in (self.a, self.b, self.flaky, self.steady, self.backup, self.pooled, self.tiny, self.anthropic):
            self._stack.enter_context(fake)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _provider(fake: FakeOpenAI, env: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": fake.base_url, "api_key_env": env, "models": ["gpt-4o", "gpt-4o-mini"], **extra}


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Fakes]]:
    with Fakes() as fakes:
        key = fakes.a.api_key
        providers = {
            "pa": _provider(fakes.a, "RT_KEY", prices={"gpt-4o": {"input_mtok": "5", "output_mtok": "15"}}),
            "pb": _provider(fakes.b, "RT_KEY", prices={"gpt-4o": {"input_mtok": "1", "output_mtok": "2"}}),
            "flaky": _provider(fakes.flaky, "RT_KEY"),
            "steady": _provider(fakes.steady, "RT_KEY"),
            "backup": _provider(fakes.backup, "RT_KEY"),
            "down": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key_env": "RT_KEY", "models": ["gpt-4o"]},
            "pooled": {"base_url": fakes.pooled.base_url, "api_key_envs": ["POOL_A", "POOL_B"], "models": ["gpt-4o"]},
            "tiny": _provider(fakes.tiny, "RT_KEY"),
            "anthropic": {"base_url": fakes.anthropic.base_url},
        }
        two = [{"model": "pa/gpt-4o", "weight": 3, "priority": 2}, {"model": "pb/gpt-4o", "weight": 1, "priority": 1}]
        routers = {
            "weighted": {"strategy": "weighted", "models": {"gpt-4o": two}},
            "rr": {"strategy": "round-robin", "models": {"gpt-4o": two}},
            "cheap": {"strategy": "cheapest", "models": {"gpt-4o": two}},
            "ordered": {"strategy": "ordered", "models": {"gpt-4o": two}},
            "busy": {
                "strategy": "least-busy",
                "models": {"gpt-4o": ["pa/fake-delay-0.3", "pb/gpt-4o-mini"]},
            },
            "latency": {
                "strategy": "lowest-latency",
                "models": {"gpt-4o": ["pa/fake-delay-0.08", "pb/fake-delay-0.01"]},
            },
            "chaos": {
                "strategy": "weighted",
                "models": {
                    "gpt-4o": {
                        "deployments": [
                            {"model": "flaky/gpt-4o", "weight": 3},
                            {"model": "down/gpt-4o", "weight": 1},
                            {"model": "steady/gpt-4o", "weight": 1},
                        ],
                        "fallbacks": {"default": "spare"},
                    },
                    "spare": ["backup/gpt-4o"],
                },
            },
            "cut": {
                "strategy": "ordered",
                "models": {
                    "mid": ["pa/fake-close-after-3", "pb/gpt-4o"],
                    "start": ["pa/fake-close-after-0", "pb/gpt-4o"],
                    "storm": {"deployments": ["pa/fake-status-429"], "fallbacks": {"rate_limit": "pb/gpt-4o"}},
                    "small": {"deployments": ["tiny/gpt-4o"], "fallbacks": {"context_window": "big"}},
                    "big": ["pb/gpt-4o"],
                    "only-down": ["down/gpt-4o"],
                },
            },
            "pool": {"models": {"gpt-4o": ["pooled/gpt-4o"]}},
        }
        config = {
            "upstream": {"timeout": 1},
            "retries": {"max_attempts": 5, "deadline_ms": 20_000, "backoff_base_ms": 20, "backoff_max_ms": 200},
            "health": {"open_seconds": 2, "min_requests": 10},
            "routers": routers,
        }
        env = {
            "RT_KEY": key,
            "POOL_A": "pool-key-a",
            "POOL_B": "pool-key-b",
            "ANTHROPIC_API_KEY": fakes.anthropic.api_key,
        }
        with running_gateway(tmp_path_factory.mktemp("routed"), providers=providers, config=config, env=env) as gw:
            yield gw, fakes


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, **extra}


async def _run(
    http: httpx.AsyncClient, path: str, bodies: list[dict[str, Any]], concurrency: int, **headers: str
) -> list[httpx.Response]:
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> httpx.Response:
        async with gate:
            response = await http.post(path, json=body, headers={**AUTH, **headers})
            await response.aread()
            return response

    return await asyncio.gather(*(one(body) for body in bodies))


def _served(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def _stream_content(text: str) -> tuple[str, bool, bool]:
    """The streamed answer's content, whether it ended with [DONE], whether it carried an error event."""
    content, done, error = "", False, False
    for event in text.split("\n\n"):
        data = event.removeprefix("data: ").strip()
        if not data:
            continue
        if data == "[DONE]":
            done = True
            continue
        parsed = orjson.loads(data)
        if "error" in parsed:
            error = True
            continue
        for choice in parsed.get("choices") or ():
            content += choice.get("delta", {}).get("content") or ""
    return content, done, error


async def test_weighted_router_shares(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    fakes.a.clear()
    fakes.b.clear()
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/weighted/v1", timeout=30) as http:
        responses = await _run(http, "/chat/completions", [_chat("gpt-4o")] * 800, 16)
    assert all(r.status_code == 200 for r in responses)
    providers = collections.Counter(r.headers["alephant-provider"] for r in responses)
    share = providers["pa"] / 800
    print(f"\nweighted 3:1 over 800 requests: pa {providers['pa']}, pb {providers['pb']} (share {share:.3f})")
    assert share == pytest.approx(0.75, abs=0.06)  # four standard deviations of a binomial share
    assert (_served(fakes.a), _served(fakes.b)) == (providers["pa"], providers["pb"])
    assert {r.headers["alephant-attempts"] for r in responses} == {"1"}


async def test_round_robin_cheapest_and_ordered_routers(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        seen = {}
        for router in ("rr", "cheap", "ordered"):
            picks = []
            for _ in range(6):
                response = await http.post(f"/router/{router}/v1/chat/completions", json=_chat("gpt-4o"), headers=AUTH)
                assert response.status_code == 200
                picks.append(response.headers["alephant-provider"])
            seen[router] = picks
    assert seen["rr"] in (["pa", "pb"] * 3, ["pb", "pa"] * 3)
    assert seen["cheap"] == ["pb"] * 6  # $1/$2 against $5/$15 per million tokens
    assert seen["ordered"] == ["pb"] * 6  # priority 1 before priority 2


async def test_least_busy_under_skewed_latency(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/busy/v1", timeout=30) as http:
        responses = await _run(http, "/chat/completions", [_chat("gpt-4o")] * 300, 24)
    assert all(r.status_code == 200 for r in responses)
    models = collections.Counter(r.headers["alephant-model"] for r in responses)
    fast = models["pb/gpt-4o-mini"] / 300
    print(f"\nleast-busy, 300 requests at 24 concurrent, 300 ms vs fast: fast share {fast:.3f} {dict(models)}")
    assert fast > 0.8


async def test_lowest_latency_converges(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/latency/v1", timeout=30) as http:
        responses = await _run(http, "/chat/completions", [_chat("gpt-4o")] * 200, 2)
    assert all(r.status_code == 200 for r in responses)
    late = collections.Counter(r.headers["alephant-model"] for r in responses[100:])
    share = late["pb/fake-delay-0.01"] / 100
    print(f"\nlowest-latency, 80 ms vs 10 ms: fast share of the last 100 of 200: {share:.2f}")
    assert share >= 0.9


async def test_thousand_requests_through_storms_without_a_failure(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    rng = random.Random(5)
    bodies = [
        _chat("gpt-4o", stream=rng.random() < 0.3, messages=[{"role": "user", "content": f"q{i}"}]) for i in range(1000)
    ]
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/chaos/v1", timeout=60) as http:
        responses = await _run(http, "/chat/completions", bodies, 32)
    elapsed = time.monotonic() - started
    failures: list[tuple[Any, ...]] = []
    for body, response in zip(bodies, responses, strict=True):
        expected = "fake reply to: " + body["messages"][0]["content"]
        if response.status_code != 200:
            failures.append((response.status_code, response.text[:200]))
        elif body["stream"]:
            content, done, error = _stream_content(response.text)
            if content != expected or not done or error:
                failures.append(("stream", content, done, error))
        elif response.json()["choices"][0]["message"]["content"] != expected:
            failures.append(("body", response.text[:200]))
    attempts = collections.Counter(int(r.headers.get("alephant-attempts", "0")) for r in responses)
    providers = collections.Counter(r.headers.get("alephant-provider") for r in responses)
    fallbacks = sum(1 for r in responses if "alephant-fallback" in r.headers)
    flaky_received = _served(fakes.flaky)
    print(
        f"\n1,000 requests (30% streamed, 32 concurrent) in {elapsed:.1f}s: {len(failures)} failures; "
        f"attempts per request {dict(sorted(attempts.items()))}; served by {dict(providers)}; "
        f"fallbacks taken {fallbacks}; flaky upstream received {flaky_received}"
    )
    assert failures == []
    # The faults did happen and were absorbed: the flaky upstream failed some of what it received, calls needed
    # more than one attempt, and fallbacks reached the backup. How many depends on how soon each circuit opens
    # (50-160 multi-attempt calls over recent runs), so the floors only prove they were not avoided altogether.
    assert flaky_received > providers["flaky"] > 0
    assert sum(n for k, n in attempts.items() if k > 1) > 20
    assert providers["backup"] > 0
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        report = (await http.get("/health/providers", headers=AUTH)).json()
    down = next(row for row in report["deployments"] if row["id"] == "down/gpt-4o")
    print(f"down/gpt-4o after the run: {down}")
    assert down["failures"] >= 5 and down["successes"] == 0
    assert down["state"] in ("open", "half-open")  # the breaker kept most calls away from it
    assert down["failures"] < 60


async def test_retry_and_fallback_are_in_headers_and_log(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/cut/v1", timeout=30) as http:
        response = await http.post("/chat/completions", json=_chat("storm"), headers=AUTH)
        assert response.status_code == 200
        assert response.headers["alephant-attempts"] == "2"
        assert response.headers["alephant-fallback"] == "rate_limit:storm->pb/gpt-4o"
        assert response.headers["alephant-model"] == "pb/gpt-4o"
        row = await gateway.log_row(response.headers["alephant-request-id"])
        assert row.attempts == 2 and row.provider == "pb"
        attempts = orjson.loads(row.attempt_log or "[]")
        assert [(a["d"], a["status"], a.get("class")) for a in attempts] == [
            ("pa/fake-status-429", 429, "rate_limit"),
            ("pb/gpt-4o", 200, None),
        ]
        # Context window exceeded: straight to the larger-context group.
        response = await http.post("/chat/completions", json=_chat("small"), headers=AUTH)
        assert response.status_code == 200
        assert response.headers["alephant-fallback"] == "context_window:small->big"
        # Nowhere to go: the last error, in the caller's dialect, with the attempts counted.
        response = await http.post("/chat/completions", json=_chat("only-down"), headers=AUTH)
        assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unavailable"
        assert int(response.headers["alephant-attempts"]) >= 2


async def test_stream_reset_before_first_byte_is_retried_once(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/cut/v1", timeout=30) as http:
        response = await http.post("/chat/completions", json=_chat("start", stream=True), headers=AUTH)
    content, done, error = _stream_content(response.text)
    assert response.status_code == 200 and done and not error
    assert content == "fake reply to: hello there"  # exactly one answer, not a replay glued to a part
    assert response.headers["alephant-attempts"] == "2" and response.headers["alephant-provider"] == "pb"


async def test_stream_cut_after_first_byte_is_never_retried(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    fakes.b.clear()
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/cut/v1", timeout=30) as http:
        response = await http.post("/chat/completions", json=_chat("mid", stream=True), headers=AUTH)
    content, done, error = _stream_content(response.text)
    assert response.status_code == 200 and error and not done
    assert "fake reply to: hello there".startswith(content) and content.count("fake") <= 1
    assert _served(fakes.b) == 0  # the backup never saw it: no duplicated answer
    assert response.headers["alephant-attempts"] == "1"
    row = await gateway.log_row(response.headers["alephant-request-id"])
    assert row.status == "error" and row.attempts == 1


async def test_key_pool_rotates_on_429(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    fakes.pooled.seen_keys.clear()
    async with httpx.AsyncClient(base_url=gateway.base_url + "/router/pool/v1", timeout=30) as http:
        responses = [await http.post("/chat/completions", json=_chat("gpt-4o"), headers=AUTH) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    # Key A answered 429 (retry-after: 1) once; the same deployment went on with key B, and A rests meanwhile.
    assert fakes.pooled.seen_keys == {"Bearer pool-key-a": 1, "Bearer pool-key-b": 5}
    assert responses[0].headers["alephant-attempts"] == "2" and "alephant-fallback" not in responses[0].headers
    row = await gateway.log_row(responses[0].headers["alephant-request-id"])
    assert [a.get("key") for a in orjson.loads(row.attempt_log or "[]")] == [0, 1]
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        report = (await http.get("/health/providers", headers=AUTH)).json()
    pooled = next(row for row in report["deployments"] if row["id"] == "pooled/gpt-4o")
    assert pooled["keys"] == 2 and pooled["keys_cooling"] in (0, 1) and pooled["state"] == "closed"


async def test_direct_calls_retry_when_asked_and_headers_are_validated(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.api_url, timeout=30) as http:
        plain = await http.post("/chat/completions", json=_chat("pa/fake-status-503"), headers=AUTH)
        assert plain.status_code == 502 and plain.headers["alephant-attempts"] == "1"  # direct: one attempt
        asked = await http.post(
            "/chat/completions", json=_chat("pa/fake-status-503"), headers={**AUTH, "Alephant-Max-Attempts": "3"}
        )
        assert asked.status_code == 502 and asked.headers["alephant-attempts"] == "3"
        for header, value in (
            ("Alephant-Max-Attempts", "0"),
            ("Alephant-Max-Attempts", "99"),
            ("Alephant-Deadline-Ms", "x"),
        ):
            bad = await http.post("/chat/completions", json=_chat("pa/gpt-4o"), headers={**AUTH, header: value})
            assert bad.status_code == 400, (header, value)
            assert bad.json()["error"]["code"] == "invalid_header" and header in bad.json()["error"]["message"]
        # A deadline shorter than the upstream's answer: no new attempt starts after it.
        started = time.monotonic()
        slow = await http.post(
            "/chat/completions",
            json=_chat("pa/fake-delay-0.6"),
            headers={**AUTH, "Alephant-Deadline-Ms": "300", "Alephant-Max-Attempts": "5"},
        )
        assert slow.status_code == 504 and time.monotonic() - started < 1.5


async def test_router_errors_and_policy(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    only_pb = gateway.create_key("routing-pb", "--models", "pb/*")
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        missing = await http.post("/router/nope/v1/chat/completions", json=_chat("gpt-4o"), headers=AUTH)
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        unknown = await http.post("/router/rr/v1/chat/completions", json=_chat("claude"), headers=AUTH)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
        headers = {"authorization": f"Bearer {only_pb['secret']}"}
        for _ in range(4):  # the key may only use pb: pa deployments are never tried
            allowed = await http.post("/router/weighted/v1/chat/completions", json=_chat("gpt-4o"), headers=headers)
            assert allowed.status_code == 200 and allowed.headers["alephant-provider"] == "pb"
        denied = await http.post("/router/chaos/v1/chat/completions", json=_chat("gpt-4o"), headers=headers)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "policy_denied"
        # The passthrough applies the same policy, by provider and the body's model.
        assert (await http.post("/pb/v1/chat/completions", json=_chat("gpt-4o"), headers=headers)).status_code == 200
        assert (await http.post("/pa/v1/chat/completions", json=_chat("gpt-4o"), headers=headers)).status_code == 403
        assert (await http.get("/pa/v1/models", headers=headers)).status_code == 403
        # Anthropic Messages through a router whose deployments speak OpenAI: translated both ways.
        messages = await http.post(
            "/router/ordered/v1/messages",
            json={"model": "gpt-4o", "max_tokens": 50, "messages": HELLO},
            headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        )
        assert messages.status_code == 200 and messages.json()["type"] == "message"


async def test_openai_passthrough(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        response = await http.post("/pa/v1/chat/completions", json=_chat("gpt-4o"), headers=AUTH)
        assert response.status_code == 200 and response.json()["object"] == "chat.completion"
        assert fakes.a.last_request.headers["authorization"] == f"Bearer {fakes.a.api_key}"  # the key swapped
        row = await gateway.log_row(response.headers["alephant-request-id"])
        assert (row.endpoint, row.provider, row.model) == ("passthrough", "pa", "gpt-4o")
        assert row.prompt_tokens > 0 and row.cost_nano > 0  # usage read, priced at pa's $5/$15
        models = await http.get("/pa/v1/models", headers=AUTH)
        assert models.status_code == 200 and models.json()["object"] == "list"
        streamed = await http.post(
            "/pa/v1/chat/completions",
            json=_chat("gpt-4o", stream=True, stream_options={"include_usage": True}),
            headers=AUTH,
        )
        assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
        row = await gateway.log_row(streamed.headers["alephant-request-id"])
        assert row.completion_tokens > 0 and row.stream
        refused = await http.post("/pa/v1/chat/completions", json=_chat("gpt-4o"))
        assert refused.status_code == 401
        upstream_error = await http.post("/pa/v1/chat/completions", json=_chat("fake-status-404"), headers=AUTH)
        assert upstream_error.status_code == 404  # the provider's own answer, relayed as is
        # Not a provider: left to the other routes.
        assert (await http.get("/nothing/v1/x", headers=AUTH)).status_code == 404


async def test_anthropic_passthrough(routed: tuple[Gateway, Fakes]) -> None:
    gateway, fakes = routed
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": HELLO}
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        response = await http.post("/anthropic/v1/messages", json=body, headers=headers)
        assert response.status_code == 200 and response.json()["type"] == "message"
        sent = fakes.anthropic.requests[-1]
        assert sent.headers["x-api-key"] == fakes.anthropic.api_key
        row = await gateway.log_row(response.headers["alephant-request-id"])
        assert row.provider == "anthropic" and row.prompt_tokens > 0 and row.cost_nano > 0
        streamed = await http.post("/anthropic/v1/messages", json={**body, "stream": True}, headers=headers)
        assert streamed.status_code == 200 and "event: message_stop" in streamed.text
        row = await gateway.log_row(streamed.headers["alephant-request-id"])
        assert row.completion_tokens > 0 and row.cost_nano > 0
        bad = await http.post("/anthropic/v1/messages", json=body, headers={"x-api-key": "wrong"})
        assert bad.status_code == 401 and bad.json()["type"] == "error"  # in Anthropic's shape


async def test_health_providers_requires_a_key(routed: tuple[Gateway, Fakes]) -> None:
    gateway, _ = routed
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        assert (await http.get("/health/providers")).status_code == 401
        report = (await http.get("/health/providers", headers=AUTH)).json()
    assert report["routers"]["chaos"]["gpt-4o"]["fallbacks"] == {"default": "spare"}
    row = next(r for r in report["deployments"] if r["id"] == "pa/gpt-4o")
    assert set(row) >= {"state", "cooldown_until", "error_ratio", "ewma_latency_ms", "in_flight"}


def test_bad_router_config_is_reported(tmp_path: Path) -> None:
    config = {"routers": {"r": {"models": {"m": {"deployments": ["openai/gpt-4o"], "fallbacks": {"timeout": "x"}}}}}}
    with pytest.raises(RuntimeError, match="neither a group"), running_gateway(tmp_path, config=config):
        pass


class _Transport:
    def __init__(self, status: int | None) -> None:
        self.status = status
        self.urls: list[str] = []

    async def send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        self.urls.append(request.url)
        if self.status is None:
            raise TransportError("refused", provider=request.provider_id)
        return UpstreamResponse(status=self.status, headers={}, body=b"{}")


class _Upstreams:
    def __init__(self, transport: _Transport) -> None:
        self.transport_ = transport

    def transport(self, spec: ProviderSpec) -> _Transport:
        return self.transport_


async def test_active_probes_open_and_close_circuits() -> None:
    clock = Clock()
    health = Health(HealthSettings(min_requests=3, open_seconds=60), clock=clock)
    deployment = _deployment("d")
    group = Group(name="g", deployments=(deployment,), strategy=Ordered())
    transport = _Transport(None)
    prober = Prober(
        routers=Routers({"r": Router("r", {"g": group})}),
        health=health,
        upstreams=_Upstreams(transport),  # type: ignore[arg-type]
        interval=1,
        timeout=1,
    )
    for _ in range(3):
        assert await prober.probe(deployment) is False
    assert health.state("d") == "open" and transport.urls[0] == "http://x/models"
    transport.status = 200  # back up: the probe closes the circuit without waiting for open_seconds
    assert await prober.probe(deployment) is True
    assert health.state("d") == "closed"


def test_active_probes_find_a_dead_provider_without_traffic(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        providers = {
            "up": _provider(fake, "RT_KEY"),
            "down": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key_env": "RT_KEY", "models": ["gpt-4o"]},
        }
        config = {
            "health": {"probe_interval": 0.1, "min_requests": 3},
            "routers": {"r": {"models": {"gpt-4o": ["up/gpt-4o", "down/gpt-4o"]}}},
        }
        with running_gateway(tmp_path, providers=providers, config=config, env={"RT_KEY": fake.api_key}) as gateway:
            deadline = time.monotonic() + 10
            while True:
                report = httpx.get(gateway.base_url + "/health/providers", headers=AUTH).json()
                states = {row["id"]: row["state"] for row in report["deployments"]}
                if states.get("down/gpt-4o") == "open" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    assert states == {"up/gpt-4o": "closed", "down/gpt-4o": "open"}
    assert any(r.path == "/v1/models" for r in fake.requests)  # the live one was probed too
