"""Routers kept in the store (``/admin/routers``) and per-deployment ``rpm``/``tpm`` limits.

Two real gateway processes share one SQLite store: a router written through one is served by both (the other
picks it up from the version row), replaced, and deleted. Deployment limits are checked through
``/health/providers``, which counts each deployment's successes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from server.config import HealthSettings
from server.routing.health import Health
from tests.conftest import MASTER_KEY, Gateway, running_gateway

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
CONFIGURED = {"routers": {"fixed": {"models": {"any": ["mock/mock-1"]}}}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    tmp = tmp_path_factory.mktemp("routers-store")
    url = f"sqlite:///{tmp / 'shared.db'}"
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with (
        running_gateway(tmp / "a", config=CONFIGURED, database_url=url) as first,
        running_gateway(tmp / "b", config=CONFIGURED, database_url=url) as second,
    ):
        yield first, second


def _models(gateway: Gateway, router_id: str) -> httpx.Response:
    return httpx.get(f"{gateway.base_url}/router/{router_id}/v1/models", headers=AUTH)


def _wait(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_stored_router_is_served_by_every_replica_then_replaced_and_deleted(
    pair: tuple[Gateway, Gateway],
) -> None:
    first, second = pair
    body = {"strategy": "ordered", "models": {"smart": ["mock/mock-1"], "cheap": {"deployments": ["mock/mock-1"]}}}
    created = httpx.put(f"{first.base_url}/admin/routers/team-a", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "team-a"

    # Served at once by the process that stored it, and by the other after its next poll.
    assert sorted(row["id"] for row in _models(first, "team-a").json()["data"]) == ["cheap", "smart"]
    _wait(lambda: _models(second, "team-a").status_code == 200)
    with openai.OpenAI(base_url=f"{second.base_url}/router/team-a/v1", api_key=MASTER_KEY) as client:
        answer = client.chat.completions.with_raw_response.create(model="smart", messages=HELLO)
        assert answer.headers["alephant-model"] == "mock/mock-1"
        with pytest.raises(openai.NotFoundError, match="no model 'gpt-9'"):
            client.chat.completions.create(model="gpt-9", messages=HELLO)

    replaced = httpx.put(
        f"{first.base_url}/admin/routers/team-a", json={"models": {"fast": ["mock/mock-1"]}}, headers=AUTH
    )
    assert replaced.status_code == 200
    _wait(lambda: [row["id"] for row in _models(second, "team-a").json().get("data", [])] == ["fast"])

    listed = httpx.get(f"{second.base_url}/admin/routers", headers=AUTH).json()
    assert [row["id"] for row in listed["data"]] == ["team-a"]
    assert listed["configured"] == ["fixed"]

    assert httpx.delete(f"{second.base_url}/admin/routers/team-a", headers=AUTH).status_code == 200
    _wait(lambda: _models(first, "team-a").status_code == 404)
    assert "No router 'team-a'" in _models(first, "team-a").json()["error"]["message"]
    assert httpx.get(f"{first.base_url}/admin/routers/team-a", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("router_id", "body", "status", "fragment"),
    [
        ("bad", {"models": {"x": ["nosuch/model"]}}, 400, "no such provider in the catalog"),
        ("bad", {"models": {"x": ["gpt-4o"]}}, 400, "expected provider/model"),
        ("bad", {"models": {}}, 400, "models"),
        ("bad", {"strategy": "fastest", "models": {"x": ["mock/mock-1"]}}, 400, "strategy"),
        ("bad", {"models": {"x": {"deployments": ["mock/mock-1"], "fallbacks": {"default": "y"}}}}, 400, "'y'"),
        ("bad id!", {"models": {"x": ["mock/mock-1"]}}, 400, "Router id"),
        ("fixed", {"models": {"x": ["mock/mock-1"]}}, 409, "alephant.yaml"),
    ],
)
def test_bad_routers_are_refused_and_never_stored(
    pair: tuple[Gateway, Gateway], router_id: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    first, _ = pair
    answer = httpx.put(f"{first.base_url}/admin/routers/{router_id}", json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]["message"]
    assert httpx.get(f"{first.base_url}/admin/routers", headers=AUTH).json()["data"] == []


def test_routers_admin_needs_the_master_key(pair: tuple[Gateway, Gateway]) -> None:
    first, _ = pair
    key = first.create_key("plain")
    answer = httpx.get(f"{first.base_url}/admin/routers", headers={"authorization": f"Bearer {key['secret']}"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "policy_denied"
    assert httpx.get(f"{first.base_url}/admin/routers").status_code == 401


def test_router_scoped_models_follow_the_key_policy(pair: tuple[Gateway, Gateway]) -> None:
    first, _ = pair
    assert [row["id"] for row in _models(first, "fixed").json()["data"]] == ["any"]
    key = first.create_key("openai-only", "--models", "openai/*")
    limited = httpx.get(
        f"{first.base_url}/router/fixed/v1/models", headers={"authorization": f"Bearer {key['secret']}"}
    )
    assert limited.json()["data"] == []


# -- per-deployment limits ----------------------------------------------------------------------------------------


def test_health_counts_a_rolling_minute() -> None:
    now = [1000.0]
    health = Health(HealthSettings(), clock=lambda: now[0])
    for _ in range(3):
        health.called("d")
    assert health.over_rate("d", rpm=3, tpm=None)
    assert not health.over_rate("d", rpm=4, tpm=None)
    health.used("d", 500)
    assert health.over_rate("d", rpm=None, tpm=500)
    assert not health.over_rate("d", rpm=None, tpm=501)
    now[0] += 60.5
    assert not health.over_rate("d", rpm=3, tpm=500)
    assert not health.over_rate("other", rpm=1, tpm=1)


def test_a_deployment_at_its_rpm_or_tpm_is_skipped(tmp_path: Path) -> None:
    deployments = [
        {"model": "mock/mock-1", "id": "first", "priority": 0, "rpm": 3},
        {"model": "mock/mock-1", "id": "second", "priority": 1},
    ]
    config = {
        "routers": {
            "limited": {"strategy": "ordered", "models": {"m": {"deployments": deployments}}},
            "tokens": {
                "strategy": "ordered",
                "models": {
                    "m": [
                        {"model": "mock/mock-1", "id": "small", "priority": 0, "tpm": 1},
                        {"model": "mock/mock-1", "id": "big", "priority": 1},
                    ]
                },
            },
        }
    }
    with running_gateway(tmp_path, config=config) as gateway:
        for router_id in ("limited", "tokens"):
            with openai.OpenAI(base_url=f"{gateway.base_url}/router/{router_id}/v1", api_key=MASTER_KEY) as client:
                for _ in range(5):
                    client.chat.completions.create(model="m", messages=HELLO)
        report = httpx.get(f"{gateway.base_url}/health/providers", headers=AUTH).json()
    served = {row["id"]: row["successes"] for row in report["deployments"]}
    assert served["first"] == 3 and served["second"] == 2  # rpm 3: the fourth call went on
    assert served["small"] == 1 and served["big"] == 4  # tpm 1: full after its first call's tokens
    minute = {row["id"]: row["calls_last_minute"] for row in report["deployments"]}
    assert minute["first"] == 3
