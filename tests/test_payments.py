"""Paid endpoints and agent payments, end to end: one real gateway sells a paid route and buys from itself."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from finance.payments import quotes, sign
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.paid_upstream import PaidUpstream

PAY_TO = "0x" + "ab" * 20
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[PaidUpstream]:
    with PaidUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: PaidUpstream) -> Iterator[Gateway]:
    config = {
        "paid_endpoints": {
            "weather": {
                "path": "/paid/weather",
                "target": f"{upstream.root_url}/weather",
                "price_usd": "0.01",
                "pay_to": PAY_TO,
                "description": "Today's weather",
            },
        },
    }
    with running_gateway(tmp_path_factory.mktemp("payments"), config=config) as gw:
        yield gw


def _challenge(gateway: Gateway) -> httpx.Response:
    return httpx.get(f"{gateway.base_url}/paid/weather")


async def _signed(gateway: Gateway, rail: str) -> tuple[str, str]:
    first = _challenge(gateway)
    offers = [
        q
        for q in quotes(first.headers.get("payment-required"), first.headers.get_list("www-authenticate"))
        if q.rail == rail
    ]
    return await sign(offers[0], Account.create())


def test_unpaid_request_gets_both_challenges(gateway: Gateway) -> None:
    response = _challenge(gateway)
    assert response.status_code == 402
    required = json.loads(base64.b64decode(response.headers["payment-required"]))
    assert required["x402Version"] == 2
    accepted = required["accepts"][0]
    assert (accepted["amount"], accepted["network"], accepted["payTo"].lower()) == ("10000", "eip155:84532", PAY_TO)
    assert response.headers["www-authenticate"].startswith("Payment ")
    assert response.json()["error"]["code"] == "payment_required"


@pytest.mark.parametrize("rail", ["x402", "mpp"])
def test_paid_call_settles_once_and_records_revenue(gateway: Gateway, upstream: PaidUpstream, rail: str) -> None:
    name, value = asyncio.run(_signed(gateway, rail))
    before = upstream.hits
    paid = httpx.get(f"{gateway.base_url}/paid/weather", headers={name: value})
    assert paid.status_code == 200, paid.text
    assert paid.json()["weather"] == "sunny"
    assert ("payment-response" if rail == "x402" else "payment-receipt") in paid.headers
    replay = httpx.get(f"{gateway.base_url}/paid/weather", headers={name: value})
    assert replay.status_code in (402, 403, 409), replay.text
    assert upstream.hits == before + 1
    rows = httpx.get(f"{gateway.base_url}/admin/payments", headers=ADMIN).json()["data"]
    assert [r["status"] for r in rows if r["rail"] == rail and r["direction"] == "in"] == ["settled"]


def test_forged_and_tampered_payments_are_refused(gateway: Gateway, upstream: PaidUpstream) -> None:
    name, value = asyncio.run(_signed(gateway, "x402"))
    payload = json.loads(base64.b64decode(value))
    forged = json.loads(json.dumps(payload))
    forged["payload"]["signature"] = "0x" + "11" * 65
    tampered = json.loads(json.dumps(payload))
    tampered["accepted"]["amount"] = "1"
    before = upstream.hits
    for bad, reason in ((forged, "invalid"), (tampered, "requirements_mismatch")):
        header = base64.b64encode(json.dumps(bad).encode()).decode()
        response = httpx.get(f"{gateway.base_url}/paid/weather", headers={name: header})
        assert response.status_code == 402
        assert reason in response.json()["error"]["code"]
    assert upstream.hits == before


def test_two_concurrent_requests_with_one_payment_run_the_handler_once(
    gateway: Gateway, upstream: PaidUpstream
) -> None:
    name, value = asyncio.run(_signed(gateway, "x402"))
    before = upstream.hits

    async def both() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            sent = [client.get(f"{gateway.base_url}/paid/weather", headers={name: value}) for _ in range(2)]
            return sorted(r.status_code for r in await asyncio.gather(*sent))

    assert asyncio.run(both()) == [200, 409]
    assert upstream.hits == before + 1


def test_agent_buys_from_the_gateway_itself(gateway: Gateway, upstream: PaidUpstream) -> None:
    wallet = httpx.post(f"{gateway.base_url}/admin/wallets", headers=ADMIN, json={"agent_id": "buyer-1"})
    assert wallet.status_code == 201, wallet.text
    assert "ciphertext" not in wallet.json()
    agent = {**ADMIN, "Alephant-Agent-Id": "buyer-1"}
    url = f"{gateway.base_url}/paid/weather"
    too_cheap = httpx.post(
        f"{gateway.base_url}/v1/payments/fetch", headers=agent, json={"url": url, "max_price": "0.001"}
    )
    assert too_cheap.status_code == 403
    assert "above max_price" in too_cheap.json()["error"]["message"]
    before = upstream.hits
    bought = httpx.post(f"{gateway.base_url}/v1/payments/fetch", headers=agent, json={"url": url, "max_price": "0.05"})
    assert bought.status_code == 200, bought.text
    result = bought.json()
    assert result["status"] == 200 and json.loads(result["body"])["weather"] == "sunny"
    assert result["payment"]["settled"] is True and result["payment"]["amount_nano"] == 10_000_000
    assert upstream.hits == before + 1
    spend = httpx.get(f"{gateway.base_url}/v1/spend?agent_id=buyer-1", headers=ADMIN).json()
    assert [e["kind"] for e in spend["data"]] == ["payment_spend"]
    assert spend["payment_spend_nano"] == 10_000_000


def test_disallowed_origin_is_refused(tmp_path: Path, upstream: PaidUpstream) -> None:
    config = {"payments": {"allowed_origins": ["https://allowed.example"]}}
    with running_gateway(tmp_path, config=config) as gw:
        httpx.post(f"{gw.base_url}/admin/wallets", headers=ADMIN, json={"agent_id": "a"}).raise_for_status()
        refused = httpx.post(
            f"{gw.base_url}/v1/payments/fetch",
            headers={**ADMIN, "Alephant-Agent-Id": "a"},
            json={"url": f"{upstream.root_url}/x"},
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "origin_not_allowed"
        assert httpx.get(f"{gw.base_url}/admin/payments", headers=ADMIN).json()["data"] == []
