"""Limits exact across replicas: three gateway processes sharing one PostgreSQL store and one Redis.

Budgets: the mock is priced at $0 input and $1000 per million output tokens and every call asks for
``max_tokens=3``, so a call's reserved upper bound equals its actual cost (``CALL_COST``) and a budget of 100
calls must serve exactly 100. Concurrency is measured where it matters, at the upstream: a fake OpenAI server
that records its in-flight high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import FAKE_KEY_ENV, MASTER_KEY, Gateway, running_gateway
from tests.fakes.openai_upstream import FakeOpenAI

REDIS_URL = "redis://127.0.0.1:6379/0"
CALL_COST = 3_000_000
LEASE_TTL = 2.0
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[list[Gateway]]:
    url = fresh_postgres_url()
    prefix = f"alephant-test:{secrets.token_hex(6)}:"
    providers = {
        "mock": {"base_url": "http://127.0.0.1:9", "prices": {"mock-1": {"input_mtok": "0", "output_mtok": "1000"}}},
        "slow": {
            "base_url": fake.base_url,
            "api_key_env": FAKE_KEY_ENV,
            "models": ["fake-delay-0.3", "fake-delay-30"],
        },
    }
    env = {
        "ALEPHANT_REDIS_URL": REDIS_URL,
        "ALEPHANT_LIMITS__REDIS_PREFIX": prefix,
        "ALEPHANT_LIMITS__LEASE_TTL": str(LEASE_TTL),
        FAKE_KEY_ENV: fake.api_key,
    }
    try:
        with contextlib.ExitStack() as stack:
            gateways = [
                stack.enter_context(
                    running_gateway(
                        tmp_path_factory.mktemp(f"replica{index}"),
                        providers=providers,
                        env=env,
                        database_url=url,
                        store="postgres",
                    )
                )
                for index in range(3)
            ]
            yield gateways
    finally:
        drop_postgres(url)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def _key(replicas: list[Gateway], name: str) -> dict[str, Any]:
    key = replicas[0].create_key(name)
    for gateway in replicas[1:]:
        gateway.wait_key(key["secret"], accepted=True)
    return key


def _rule(replicas: list[Gateway], path: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(replicas[0].base_url + "/admin" + path, headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    time.sleep(0.5)  # the other replicas poll state_version('limits') every 0.1 s
    made: dict[str, Any] = response.json()
    return made


async def _fire(replicas: list[Gateway], secret: str, count: int, model: str, **extra: Any) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        return await asyncio.gather(
            *(
                http.post(
                    replicas[index % 3].api_url + "/chat/completions",
                    headers={"authorization": f"Bearer {secret}"},
                    json={"model": model, "messages": [{"role": "user", "content": f"call number {index}"}], **extra},
                )
                for index in range(count)
            )
        )


def test_zero_overspend_500_concurrent_calls_against_a_budget_of_100(replicas: list[Gateway]) -> None:
    key = _key(replicas, "budgeted")
    budget = _rule(replicas, "/budgets", scope="key", scope_id=key["id"], period="daily", limit_nano=100 * CALL_COST)
    responses = asyncio.run(_fire(replicas, key["secret"], 500, "mock/mock-1", max_tokens=3))
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 100, {status: statuses.count(status) for status in set(statuses)}
    assert statuses.count(402) == 400
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in responses if r.status_code == 402)
    assert len({r.url.port for r in responses}) == 3  # every replica took part
    current = httpx.get(replicas[1].base_url + f"/admin/budgets/{budget['id']}", headers=ADMIN).json()["current"]
    assert (current["spent_nano"], current["reserved_nano"]) == (100 * CALL_COST, 0)


def test_rpm_60_across_three_replicas(replicas: list[Gateway]) -> None:
    key = _key(replicas, "rated")
    _rule(replicas, "/limits", scope="key", scope_id=key["id"], kind="rpm", limit=60)
    responses = asyncio.run(_fire(replicas, key["secret"], 120, "mock/mock-1", max_tokens=3))
    statuses = [response.status_code for response in responses]
    assert abs(statuses.count(200) - 60) <= 1 and statuses.count(200) + statuses.count(429) == 120
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1


def test_concurrency_5_is_never_exceeded_at_the_upstream(replicas: list[Gateway], fake: FakeOpenAI) -> None:
    key = _key(replicas, "concurrent")
    _rule(replicas, "/limits", scope="key", scope_id=key["id"], kind="concurrency", limit=5)
    fake.max_in_flight = 0
    statuses: list[int] = []
    for _ in range(3):  # waves of 30 calls, each call 0.3 s at the upstream
        responses = asyncio.run(_fire(replicas, key["secret"], 30, "slow/fake-delay-0.3"))
        statuses += [response.status_code for response in responses]
    assert fake.max_in_flight == 5
    assert statuses.count(200) >= 5 and statuses.count(200) + statuses.count(429) == 90
    assert statuses.count(429) > 0


def test_a_killed_replica_gives_its_slots_back_within_the_lease_ttl(
    replicas: list[Gateway], fake: FakeOpenAI, tmp_path: Path
) -> None:
    key = _key(replicas, "crash")
    _rule(replicas, "/limits", scope="key", scope_id=key["id"], kind="concurrency", limit=2)
    doomed = replicas[2]
    body = {"model": "slow/fake-delay-30", "messages": [{"role": "user", "content": "hang"}]}
    headers = {"authorization": f"Bearer {key['secret']}"}

    async def hang() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            with contextlib.suppress(httpx.HTTPError):
                await http.post(doomed.api_url + "/chat/completions", json=body, headers=headers)

    async def scenario() -> float:
        hanging = [asyncio.create_task(hang()) for _ in range(2)]
        deadline = time.monotonic() + 10
        while fake.in_flight < 2:
            assert time.monotonic() < deadline, "the two slow calls never reached the upstream"
            await asyncio.sleep(0.02)
        doomed.process.kill()  # SIGKILL: no shutdown, no commit, no release
        killed = time.monotonic()
        quick = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        async with httpx.AsyncClient(timeout=10) as http:
            first = await http.post(replicas[0].api_url + "/chat/completions", json=quick, headers=headers)
            assert first.status_code == 429 and first.json()["error"]["code"] == "concurrency_limited"
            while True:
                response = await http.post(replicas[0].api_url + "/chat/completions", json=quick, headers=headers)
                if response.status_code == 200:
                    back = time.monotonic() - killed
                    break
                assert time.monotonic() - killed < LEASE_TTL * 3, "slots did not come back"
                await asyncio.sleep(0.1)
        await asyncio.gather(*hanging)
        return back

    back = asyncio.run(scenario())
    assert back <= LEASE_TTL + 0.5, f"slots came back after {back:.2f} s"
