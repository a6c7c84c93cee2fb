"""Payments, second step, end to end on SQLite and PostgreSQL: the CLI, buying from a reference server built with
the SDKs' own seller middleware, budgets before signing, a transport failure after signing, payment spans in
run traces, and paid model calls."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from finance.payments import quotes, sign
from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.paid_dropping import DroppingSeller
from tests.fakes.paid_reference import PaidReference
from tests.fakes.paid_upstream import PaidUpstream

PAY_TO = "0x" + "cd" * 20
SELLER = "0x" + "ef" * 20
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[PaidUpstream]:
    with PaidUpstream() as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: PaidUpstream
) -> Iterator[Gateway]:
    store = request.param
    database_url = fresh_postgres_url() if store == "postgres" else None
    config = {
        "payments": {"serve_local_facilitator": True},
        "paid_endpoints": {
            "weather": {
                "path": "/paid/weather",
                "target": f"{upstream.root_url}/weather",
                "price_usd": "0.01",
                "pay_to": PAY_TO,
            },
            "chat": {"path": "/paid/chat", "target": "model:mock/mock-1", "price_usd": "0.005", "pay_to": PAY_TO},
        },
    }
    try:
        with running_gateway(
            tmp_path_factory.mktemp(f"pay-{store}"), config=config, database_url=database_url, store=store
        ) as gateway:
            yield gateway
    finally:
        if database_url is not None:
            drop_postgres(database_url)


@pytest.fixture(scope="module")
def reference(gw: Gateway) -> Iterator[PaidReference]:
    with PaidReference(facilitator_url=f"{gw.base_url}/v1/payments/facilitator", pay_to=SELLER) as server:
        yield server


def _wait(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout}s")
        time.sleep(0.05)


def _wallet(gw: Gateway, agent: str) -> dict[str, Any]:
    created = httpx.post(f"{gw.base_url}/admin/wallets", headers=ADMIN, json={"agent_id": agent})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _fetch(gw: Gateway, agent: str, url: str, run_id: str | None = None) -> httpx.Response:
    headers = {**ADMIN, "Alephant-Agent-Id": agent, **({"Alephant-Run-Id": run_id} if run_id else {})}
    return httpx.post(f"{gw.base_url}/v1/payments/fetch", headers=headers, json={"url": url}, timeout=30)


def _spans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if node.get("kind") == "payment" else []
    for child in node.get("children", []):
        found += _spans(child)
    return found


def _payments(gw: Gateway, **match: Any) -> list[dict[str, Any]]:
    rows = httpx.get(f"{gw.base_url}/admin/payments", headers=ADMIN).json()["data"]
    return [row for row in rows if all(row[k] == v for k, v in match.items())]


def _pay(gw: Gateway, path: str, body: dict[str, Any], rail: str = "x402") -> tuple[str, str]:
    """A payment header for ``path``'s offer, signed by a fresh account (the local chain's faucet funds it)."""
    first = httpx.post(f"{gw.base_url}{path}", json=body)
    assert first.status_code == 402, first.text
    offers = quotes(first.headers.get("payment-required"), first.headers.get_list("www-authenticate"))
    return asyncio.run(sign(next(q for q in offers if q.rail == rail), Account.create()))


def test_cli_manages_paid_endpoints_and_wallets(gw: Gateway, upstream: PaidUpstream) -> None:
    path = f"/paid/cli-{uuid.uuid4().hex[:6]}"
    bad = gw.cli(
        "paid-endpoints",
        "create",
        "--path",
        path,
        "--target",
        upstream.root_url,
        "--price",
        "0.01",
        "--pay-to",
        "0x12",
        check=False,
    )
    assert bad.returncode == 2 and "--pay-to" in bad.stderr
    created = json.loads(
        gw.cli(
            "paid-endpoints",
            "create",
            "--path",
            path,
            "--target",
            f"{upstream.root_url}/cli",
            "--price",
            "0.03",
            "--pay-to",
            PAY_TO,
            "--json",
        ).stdout
    )
    assert created["price_usd"] == "0.030000000" and created["path"] == path
    # The running gateway serves it once its poll sees state_version('payments') move.
    _wait(lambda: httpx.get(gw.base_url + path).status_code == 402, "CLI-created endpoint not served")
    listed = json.loads(gw.cli("paid-endpoints", "list", "--json").stdout)
    assert [row["id"] for row in listed if row["path"] == path] == [created["id"]]
    again = gw.cli(
        "paid-endpoints",
        "create",
        "--path",
        path,
        "--target",
        upstream.root_url,
        "--price",
        "1",
        "--pay-to",
        PAY_TO,
        check=False,
    )
    assert again.returncode == 2 and "already a paid endpoint" in again.stderr
    gw.cli("paid-endpoints", "delete", created["id"])
    _wait(lambda: httpx.get(gw.base_url + path).status_code == 404, "deleted endpoint still served")
    assert gw.cli("paid-endpoints", "delete", created["id"], check=False).returncode == 1

    agent = f"cli-{uuid.uuid4().hex[:6]}"
    wallet = json.loads(gw.cli("wallets", "create", "--agent", agent, "--max-price", "0.5", "--json").stdout)
    assert wallet["address"].startswith("0x") and "ciphertext" not in wallet
    assert wallet["policy"] == {"max_price_usd": "0.5"}
    listed_wallets = json.loads(gw.cli("wallets", "list", "--json").stdout)
    assert [w["address"] for w in listed_wallets if w["agent_id"] == agent] == [wallet["address"]]
    duplicate = gw.cli("wallets", "create", "--agent", agent, check=False)
    assert duplicate.returncode == 2 and "already has a wallet" in duplicate.stderr
    # The gateway opens the CLI-sealed key: the agent can pay.
    bought = _fetch(gw, agent, f"{gw.base_url}/paid/weather")
    assert bought.status_code == 200 and bought.json()["payment"]["settled"] is True


@pytest.mark.parametrize("rail", ["x402", "mpp"])
def test_gateway_buys_from_the_sdk_reference_server(gw: Gateway, reference: PaidReference, rail: str) -> None:
    agent = f"buyer-{rail}-{uuid.uuid4().hex[:6]}"
    wallet = _wallet(gw, agent)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    before = len(reference.paid)
    bought = _fetch(gw, agent, f"{reference.root_url}/{rail}/report", run_id)
    assert bought.status_code == 200, bought.text
    result = bought.json()
    assert result["status"] == 200 and json.loads(result["body"])["report"] == f"{rail} paid"
    payment = result["payment"]
    assert (payment["rail"], payment["settled"], payment["amount_nano"]) == (rail, True, 20_000_000)
    # The reference server saw the payment, from this agent's wallet.
    assert reference.paid[before:] == [{"rail": rail, "payer": wallet["address"]}]
    # Our side: a settled outbound payment, payment_spend in the ledger, a payment span in the run.
    assert [row["status"] for row in _payments(gw, agent_id=agent, direction="out")] == ["settled"]
    spend = httpx.get(f"{gw.base_url}/v1/spend", headers={**ADMIN, "Alephant-Agent-Id": agent}).json()
    assert "payment_spend" in json.dumps(spend)
    trace = httpx.get(f"{gw.base_url}/v1/runs/{run_id}", headers=ADMIN)
    assert trace.status_code == 200, trace.text
    (span,) = _spans(trace.json())
    assert span["cost_nano"] == 20_000_000 and span["status"] == "ok"
    assert span["attributes"]["direction"] == "out" and span["attributes"]["payment_id"] == payment["id"]


def test_exhausted_budget_refuses_before_signing(gw: Gateway, reference: PaidReference) -> None:
    agent = f"poor-{uuid.uuid4().hex[:6]}"
    _wallet(gw, agent)
    budget = httpx.post(
        f"{gw.base_url}/admin/budgets",
        headers=ADMIN,
        json={"scope": "agent", "scope_id": agent, "period": "daily", "limit_usd": "0.01"},
    )
    assert budget.status_code == 201, budget.text
    before = len(reference.paid)
    refused = _fetch(gw, agent, f"{reference.root_url}/x402/report")
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "Nothing was signed" in error["message"]
    assert len(reference.paid) == before
    assert _payments(gw, agent_id=agent) == []


def test_transport_failure_after_signing_keeps_the_hold_counted(gw: Gateway) -> None:
    agent = f"drop-{uuid.uuid4().hex[:6]}"
    _wallet(gw, agent)
    budget = httpx.post(
        f"{gw.base_url}/admin/budgets",
        headers=ADMIN,
        json={"scope": "agent", "scope_id": agent, "period": "daily", "limit_usd": "1.00"},
    ).json()
    offer = httpx.get(f"{gw.base_url}/paid/weather")
    with DroppingSeller() as seller:
        seller.challenge = [
            (k, v) for k, v in offer.headers.multi_items() if k in ("payment-required", "www-authenticate")
        ]
        failed = _fetch(gw, agent, f"{seller.root_url}/report")
        assert seller.paid_requests == 1
    assert failed.status_code in (502, 503), failed.text
    assert "may still settle" in failed.json()["error"]["message"]
    current = httpx.get(f"{gw.base_url}/admin/budgets/{budget['id']}", headers=ADMIN).json()["current"]
    # The signed authorization stays counted at its price; nothing is left reserved.
    assert (current["spent_nano"], current["reserved_nano"]) == (10_000_000, 0), current
    assert [row["status"] for row in _payments(gw, agent_id=agent)] == ["claimed"]


def test_selling_side_span_and_model_target(gw: Gateway) -> None:
    run_id = f"sell-{uuid.uuid4().hex[:8]}"
    body = {"model": "whatever", "messages": [{"role": "user", "content": "Hi"}]}
    invalid = httpx.post(f"{gw.base_url}/paid/chat", json={"messages": []})
    assert invalid.status_code == 400 and "messages" in invalid.json()["error"]["message"]
    name, value = _pay(gw, "/paid/chat", body)
    paid = httpx.post(
        f"{gw.base_url}/paid/chat", json=body, headers={name: value, "Alephant-Run-Id": run_id}, timeout=30
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["choices"][0]["message"]["content"] == "Mock reply to: Hi"
    assert paid.json()["model"].endswith("mock-1")
    assert "payment-response" in paid.headers
    trace = httpx.get(f"{gw.base_url}/v1/runs/{run_id}", headers=ADMIN).json()
    (span,) = _spans(trace)
    assert span["attributes"]["direction"] == "in" and span["attributes"]["amount_usd"] == "0.005000000"
    assert span["cost_nano"] == 0  # revenue is not a cost of the run
    # The model call itself is a governed request of the selling workspace, in the same run.
    assert trace["totals"]["requests"] == 1, trace["totals"]
    rows = _payments(gw, direction="in", status="settled")
    assert any(row["amount_nano"] == 5_000_000 and row["url"].endswith("/paid/chat") for row in rows)


def test_model_target_failure_settles_nothing(tmp_path: Path) -> None:
    config = {
        "paid_endpoints": {
            "broken": {
                "path": "/paid/broken",
                "target": "model:mock/mock-error-500",
                "price_usd": "0.01",
                "pay_to": PAY_TO,
            }
        }
    }
    with running_gateway(tmp_path, config=config) as gw:
        body = {"messages": [{"role": "user", "content": "Hi"}]}
        name, value = _pay(gw, "/paid/broken", body)
        failed = httpx.post(f"{gw.base_url}/paid/broken", json=body, headers={name: value}, timeout=30)
        assert failed.status_code >= 500 and "payment-response" not in failed.headers
        assert _payments(gw) == []  # the claim was released: the payer may retry with the same payment


def test_x402_v1_clients_are_told_to_use_v2(gw: Gateway, upstream: PaidUpstream) -> None:
    before = upstream.hits
    v1 = httpx.get(f"{gw.base_url}/paid/weather", headers={"X-PAYMENT": "eyJ4NDAyVmVyc2lvbiI6MX0="})
    assert v1.status_code == 402 and v1.json()["error"]["code"] == "unsupported_version"
    assert "PAYMENT-SIGNATURE" in v1.json()["error"]["message"] and "payment-required" in v1.headers
    assert upstream.hits == before
