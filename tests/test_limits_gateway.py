"""Budgets and limits through one real gateway (in-process backend, SQLite), driven by the official SDKs.

The mock's price is overridden to $0 input and $1000 per million output tokens, and calls ask for
``max_tokens=3`` (the mock cuts its reply to exactly that), so every call's upper bound equals its actual cost:
``CALL_COST`` nano-USD.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, ROOT, Gateway, free_port, running_gateway

pytestmark = pytest.mark.anyio
CALL_COST = 3_000_000  # 3 output tokens at $1000 per million
MESSAGES = [{"role": "user", "content": "count these five words please"}]
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PRICED_MOCK = {
    "mock": {"base_url": "http://127.0.0.1:9", "prices": {"mock-1": {"input_mtok": "0", "output_mtok": "1000"}}}
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("limits"), providers=PRICED_MOCK, config={"mock": {"chunk_delay_ms": 30}}
    ) as gw:
        yield gw


def admin(gateway: Gateway, method: str, path: str, **body: Any) -> dict[str, Any]:
    response = httpx.request(method, gateway.base_url + "/admin" + path, headers=ADMIN, json=body or None)
    assert response.status_code < 300, response.text
    data: dict[str, Any] = response.json()
    return data


def budget(gateway: Gateway, key_id: str, limit_nano: int, mode: str = "hard") -> str:
    made = admin(
        gateway, "POST", "/budgets", scope="key", scope_id=key_id, period="daily", limit_nano=limit_nano, mode=mode
    )
    budget_id: str = made["id"]
    return budget_id


def client(gateway: Gateway, secret: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.api_url, api_key=secret, max_retries=0)


async def chat(sdk: openai.AsyncOpenAI) -> Any:
    return await sdk.chat.completions.with_raw_response.create(model="mock/mock-1", messages=MESSAGES, max_tokens=3)  # type: ignore[arg-type]


async def test_a_hard_budget_refuses_with_402_naming_scope_limit_spent_and_reset(gateway: Gateway) -> None:
    key = gateway.create_key("budgeted")
    budget_id = budget(gateway, key["id"], 2 * CALL_COST)
    async with client(gateway, key["secret"]) as sdk:
        for _ in range(2):
            raw = await chat(sdk)
            assert raw.headers["alephant-cost-usd"] == "0.003000000"
        with pytest.raises(openai.APIStatusError) as refused:
            await chat(sdk)
    assert refused.value.status_code == 402
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    message = error["message"]
    assert f"key budget of '{key['id']}'" in message and "0.006000000 USD" in message
    assert "resets at" in message and "T00:00:00+00:00" in message
    current = admin(gateway, "GET", f"/budgets/{budget_id}")["current"]
    assert (current["spent_nano"], current["reserved_nano"], current["remaining_nano"]) == (2 * CALL_COST, 0, 0)
    row = await gateway.log_row(refused.value.response.headers["alephant-request-id"])
    assert row.error_code == "budget_exceeded" and row.policy_events is not None and '"deny"' in row.policy_events


async def test_rate_limit_is_a_429_with_retry_after_and_ratelimit_headers(gateway: Gateway) -> None:
    key = gateway.create_key("rated")
    admin(gateway, "POST", "/limits", scope="key", scope_id=key["id"], kind="rpm", limit=2)
    async with client(gateway, key["secret"]) as sdk:
        first = await chat(sdk)
        assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
        await chat(sdk)
        with pytest.raises(openai.RateLimitError) as limited:
            await chat(sdk)
    headers = limited.value.response.headers
    assert limited.value.code == "rate_limited"
    assert 1 <= int(headers["retry-after"]) <= 60 and headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-limit"] == "2" and int(headers["x-ratelimit-reset"]) <= 60
    assert "2 requests per minute" in limited.value.message


def test_anthropic_dialect_gets_its_own_error_shape(gateway: Gateway) -> None:
    key = gateway.create_key("anthropic-client")
    admin(gateway, "POST", "/limits", scope="key", scope_id=key["id"], kind="concurrency", limit=1)
    budget(gateway, key["id"], 0)
    response = httpx.post(
        gateway.base_url + "/v1/messages",
        headers={"x-api-key": key["secret"], "anthropic-version": "2023-06-01"},
        json={"model": "mock/mock-1", "max_tokens": 3, "messages": MESSAGES},
    )
    assert response.status_code == 402
    body = response.json()
    assert body["type"] == "error" and "Budget exceeded" in body["error"]["message"]


async def test_a_stream_commits_its_cost_when_it_ends(gateway: Gateway) -> None:
    key = gateway.create_key("streamer")
    budget_id = budget(gateway, key["id"], 10 * CALL_COST)
    async with client(gateway, key["secret"]) as sdk:
        stream = await sdk.chat.completions.create(
            model="mock/mock-1",
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    current = admin(gateway, "GET", f"/budgets/{budget_id}")["current"]
    assert (current["spent_nano"], current["reserved_nano"]) == (CALL_COST, 0)


async def test_a_disconnected_stream_releases_its_reservation_and_commits_what_was_relayed(gateway: Gateway) -> None:
    key = gateway.create_key("quitter")
    budget_id = budget(gateway, key["id"], 10 * 200 * 1_000_000)
    long_text = " ".join(f"w{i}" for i in range(150))
    async with httpx.AsyncClient(base_url=gateway.api_url, timeout=10) as http:
        request = {
            "model": "mock/mock-1",
            "messages": [{"role": "user", "content": long_text}],
            "max_tokens": 200,
            "stream": True,
        }
        headers = {"authorization": f"Bearer {key['secret']}"}
        async with http.stream("POST", "/chat/completions", json=request, headers=headers) as response:
            assert response.status_code == 200
            events = 0
            async for line in response.aiter_lines():
                events += line.startswith("data:")
                if events == 5:
                    break  # hang up mid-stream
    deadline = time.monotonic() + 5
    while True:
        current = admin(gateway, "GET", f"/budgets/{budget_id}")["current"]
        if current["reserved_nano"] == 0 or time.monotonic() > deadline:
            break
        await anyio.sleep(0.05)
    assert current["reserved_nano"] == 0
    assert 0 < current["spent_nano"] < 200 * 1_000_000  # the tokens relayed before the disconnect, not the bound


async def test_a_soft_budget_alerts_and_serves(gateway: Gateway) -> None:
    key = gateway.create_key("soft")
    budget(gateway, key["id"], CALL_COST // 2, mode="soft")
    async with client(gateway, key["secret"]) as sdk:
        raw = await chat(sdk)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    events = [event for event in orjson.loads(row.policy_events or "[]") if event["rule"].startswith("budget:")]
    assert [event["decision"] for event in events] == ["alert"]
    assert events[0]["rule"] == f"budget:key:{key['id']}:daily"


async def test_a_soft_budget_crossing_is_logged_once_per_window(gateway: Gateway) -> None:
    key = gateway.create_key("soft-logged")
    budget_id = budget(gateway, key["id"], CALL_COST // 2, mode="soft")
    async with client(gateway, key["secret"]) as sdk:
        for _ in range(3):
            raw = await chat(sdk)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert '"alert"' in (row.policy_events or "")  # every call over it still carries its alert event
    log = " ".join((gateway.config_path.parent / "server.log").read_text().split())  # a console handler may wrap
    assert log.count(budget_id) == 1, "one WARNING line per budget window, not one per call"
    assert "soft budget crossed" in log and f"budget:key:{key['id']}:daily" in log and key["secret"] not in log


def test_admin_validation_names_the_field(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + "/admin/budgets",
        headers=ADMIN,
        json={"scope": "key", "period": "daily", "limit_usd": "5", "time_zone": "Mars/Olympus"},
    )
    assert response.status_code == 400 and "time_zone" in response.json()["error"]["message"]
    cli = gateway.cli("budgets", "create", "--scope", "run", "--period", "weekly", "--limit", "1.50", "--json")
    created = orjson.loads(cli.stdout)
    assert created["limit_nano"] == 1_500_000_000 and created["scope_id"] is None
    assert created["id"] in [row["id"] for row in orjson.loads(gateway.cli("budgets", "list", "--json").stdout)]
    gateway.cli("budgets", "delete", created["id"])
    assert (
        gateway.cli("limits", "create", "--scope", "model", "--kind", "tpm", "--limit", "0", check=False).returncode
        == 2
    )


def test_several_workers_without_redis_refuse_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--quiet", "--workers", "2", "--port", str(free_port())],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ALEPHANT_DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ALEPHANT_REDIS_URL" in result.stderr
