"""Finance end to end, through a real gateway on SQLite and PostgreSQL: ``POST/GET /v1/spend``, summaries and
margins, CSV, workspace price overrides, and ``alephant finance report`` — driven with httpx and the openai SDK."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from finance.money import format_usd, parse_usd
from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, Gateway, running_gateway

pytestmark = pytest.mark.anyio
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    store: str = request.param
    tmp: Path = tmp_path_factory.mktemp(f"finance-{store}")
    url = fresh_postgres_url() if store == "postgres" else None
    try:
        with running_gateway(tmp, database_url=url, store=store) as gateway:
            yield gateway
    finally:
        if url is not None:
            drop_postgres(url)


@pytest.fixture
async def http(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=30) as client:
        yield client


def _key(gw: Gateway, workspace: str) -> dict[str, str]:
    secret = gw.create_key(f"agent-{workspace}", "--workspace", workspace)["secret"]
    return {"authorization": f"Bearer {secret}"}


def _spend(**body: Any) -> dict[str, Any]:
    return {"vendor": "serpapi", "tool": "search", "idempotency_key": "k1", "amount_usd": "0.25", **body}


async def _summary(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await http.get("/v1/finance/summary", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait_requests(http: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    """The log writer stores rows in batches: wait until the summary counts every request."""
    deadline = time.monotonic() + 20
    while (await _summary(http, headers))["total"]["requests"] < count:
        assert time.monotonic() < deadline, "request-log rows did not arrive"
        await asyncio.sleep(0.05)


async def test_spend_is_recorded_once_per_idempotency_key(gw: Gateway) -> None:
    key = _key(gw, "ws-spend")
    context = {"alephant-agent-id": "researcher", "alephant-run-id": "run-7"}
    async with httpx.AsyncClient(base_url=gw.base_url, headers=key) as client:
        first = await client.post("/v1/spend", json=_spend(metadata={"query": "q"}), headers=context)
        assert first.status_code == 201, first.text
        entry = first.json()
        assert (entry["kind"], entry["amount_nano"], entry["amount_usd"]) == ("tool_spend", 250_000_000, "0.250000000")
        assert (entry["agent_id"], entry["run_id"], entry["workspace_id"]) == ("researcher", "run-7", "ws-spend")
        assert entry["id"].startswith("le_") and entry["metadata"] == {"query": "q"}

        again = await client.post("/v1/spend", json=_spend(metadata={"query": "q"}), headers=context)
        assert again.status_code == 200 and again.json()["id"] == entry["id"]
        assert again.headers["idempotent-replayed"] == "true"

        conflict = await client.post("/v1/spend", json=_spend(amount_usd="0.30"), headers=context)
        assert conflict.status_code == 409
        error = conflict.json()["error"]
        assert error["code"] == "idempotency_conflict" and "amount_nano" in error["message"]
        assert entry["id"] in error["message"]

        nano = await client.post("/v1/spend", json=_spend(idempotency_key="k2", amount_usd=None, amount_nano=7))
        assert nano.status_code == 201 and nano.json()["amount_nano"] == 7

        listed = (await client.get("/v1/spend", params={"run_id": "run-7"})).json()
        assert [e["id"] for e in listed["data"]] == [entry["id"]]
        assert listed["tool_spend_nano"] == 250_000_000 and listed["total_spend_usd"] == "0.250000000"
        everything = (await client.get("/v1/spend")).json()
        assert len(everything["data"]) == 2 and everything["tool_spend_nano"] == 250_000_007


@pytest.mark.parametrize(
    ("body", "headers", "status", "param"),
    [
        (_spend(amount_usd=0.25), {}, 400, "amount_usd"),  # a JSON number would be a float: text only
        (_spend(amount_usd="0.0000000001"), {}, 400, "amount_usd"),
        (_spend(amount_usd="-1"), {}, 400, "amount_usd"),
        (_spend(amount_nano=5), {}, 400, "amount_usd"),  # both amounts
        (_spend(idempotency_key=None), {}, 400, "idempotency_key"),
        (_spend(vendor=""), {}, 400, "vendor"),
        (_spend(surprise=1), {}, 400, "surprise"),
        (_spend(), {"alephant-run-id": "bad id!"}, 400, "Alephant-Run-Id"),
        (_spend(agent_id="bad id!"), {}, 400, "agent_id"),
        (_spend(run_id="r1"), {"alephant-run-id": "r2"}, 400, "run_id"),
    ],
)
def test_bad_spend_is_a_400_naming_the_field(
    gw: Gateway, body: dict[str, Any], headers: dict[str, str], status: int, param: str
) -> None:
    response = httpx.post(gw.base_url + "/v1/spend", json=body, headers={**ADMIN, **headers})
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_spend_needs_a_key_and_stays_in_its_workspace(gw: Gateway) -> None:
    assert httpx.post(gw.base_url + "/v1/spend", json=_spend()).status_code == 401
    key = _key(gw, "ws-own")
    foreign = httpx.get(gw.base_url + "/v1/spend", params={"workspace_id": "ws-spend"}, headers=key)
    assert foreign.status_code == 403 and foreign.json()["error"]["param"] == "workspace_id"
    assert httpx.get(gw.base_url + "/v1/spend", headers=key).json()["data"] == []


async def test_twenty_concurrent_retries_make_one_entry(gw: Gateway) -> None:
    key = _key(gw, "ws-retry")
    body = _spend(idempotency_key="pay-once", amount_usd="$1.50")
    async with httpx.AsyncClient(base_url=gw.base_url, headers=key, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/v1/spend", json=body) for _ in range(20)))
        assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
        assert len({r.json()["id"] for r in responses}) == 1
        listed = (await client.get("/v1/spend")).json()
    assert len(listed["data"]) == 1 and listed["tool_spend_nano"] == 1_500_000_000


async def test_summary_adds_up_to_the_nano_dollar(gw: Gateway, http: httpx.AsyncClient) -> None:
    workspace = "ws-report"
    key = _key(gw, workspace)
    agents, runs = ("planner", "coder", "tester"), ("run-a", "run-b")
    client = openai.AsyncOpenAI(base_url=gw.api_url, api_key=key["authorization"][7:], max_retries=0)
    limit = asyncio.Semaphore(16)
    expected: defaultdict[str, int] = defaultdict(int)
    by_run: defaultdict[str, int] = defaultdict(int)

    async def call(n: int) -> None:
        agent, run = agents[n % 3], runs[n % 2]
        async with limit:
            raw = await client.chat.completions.with_raw_response.create(
                model="mock/mock-1",
                messages=[{"role": "user", "content": "word " * (n % 40 + 1)}],
                extra_headers={"alephant-agent-id": agent, "alephant-run-id": run},
            )
        cost = parse_usd(raw.headers["alephant-cost-usd"])
        expected[agent] += cost
        by_run[run] += cost

    requests = 300
    try:
        await asyncio.gather(*(call(n) for n in range(requests)))
    finally:
        await client.close()
    assert all(cost > 0 for cost in expected.values())
    spent = await http.post(
        "/v1/spend",
        json=_spend(amount_usd="0.02", idempotency_key="s1"),
        headers={**key, "alephant-agent-id": "coder", "alephant-run-id": "run-a"},
    )
    assert spent.status_code == 201
    for body in (
        {"kind": "revenue", "amount_usd": "0.10", "agent_id": "coder", "run_id": "run-a", "endpoint": "ep_fix"},
        {"kind": "adjustment", "amount_usd": "-0.005", "agent_id": "coder", "description": "vendor credit"},
        {"kind": "cache_savings", "amount_nano": 1234, "agent_id": "planner"},
    ):
        admin = await http.post("/admin/ledger", params={"workspace_id": workspace}, json=body, headers=ADMIN)
        assert admin.status_code == 201, admin.text
    await _wait_requests(http, key, requests)

    rows = {row["group"]: row for row in (await _summary(http, key, group_by="agent"))["rows"]}
    assert set(rows) == set(agents)
    for agent in agents:
        assert rows[agent]["model_cost_nano"] == expected[agent]  # the sum of every response's cost header
        assert rows[agent]["requests"] == requests // 3
    coder = rows["coder"]
    # coder: model cost M, tool spend $0.02, adjustment -$0.005, revenue $0.10:
    #   total spend = M + 0.02 - 0.005;  margin = 0.10 - (M + 0.015)
    assert coder["total_spend_nano"] == expected["coder"] + 20_000_000 - 5_000_000
    assert coder["margin_nano"] == 100_000_000 - expected["coder"] - 15_000_000
    assert rows["planner"]["cache_savings_nano"] == 1234 and rows["planner"]["total_spend_nano"] == expected["planner"]

    runs_rows = {row["group"]: row for row in (await _summary(http, key, group_by="run"))["rows"]}
    assert runs_rows["run-a"]["model_cost_nano"] == by_run["run-a"]
    assert runs_rows["run-b"]["model_cost_nano"] == by_run["run-b"]
    endpoint = {row["group"]: row for row in (await _summary(http, key, group_by="endpoint"))["rows"]}
    assert endpoint["ep_fix"]["margin_nano"] == 100_000_000

    whole = await _summary(http, key)
    assert len(whole["rows"]) == 1 and whole["rows"][0]["group"] is None
    total = whole["total"]
    assert total["model_cost_nano"] == sum(expected.values()) and total["requests"] == requests
    assert total["margin_usd"] == format_usd(100_000_000 - sum(expected.values()) - 15_000_000)
    by_model = (await _summary(http, key, group_by="model"))["rows"]
    assert by_model[0]["group"] == "mock/mock-1" and by_model[0]["model_cost_nano"] == sum(expected.values())
    later = await _summary(http, key, **{"from": "2999-01-01"})
    assert later["total"]["requests"] == 0 and later["rows"][0]["total_spend_nano"] == 0

    exported = await http.get(
        "/v1/finance/summary", params={"group_by": "agent"}, headers={**key, "accept": "text/csv"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = {row["agent"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert {agent: int(row["model_cost_nano"]) for agent, row in table.items()} == dict(expected)
    assert table["coder"]["margin_usd"] == coder["margin_usd"]
    as_format = await http.get("/v1/finance/summary", params={"group_by": "agent", "format": "csv"}, headers=key)
    assert as_format.text == exported.text

    report = gw.cli("finance", "report", "--group-by", "agent", "--workspace", workspace, "--csv").stdout
    assert report == exported.text
    rendered = gw.cli("finance", "report", "--group-by", "agent", "--workspace", workspace).stdout
    assert "coder" in rendered and "total" in rendered

    other = await _summary(http, _key(gw, "ws-empty"), group_by="agent")
    assert other["rows"] == [] and other["total"]["requests"] == 0


@pytest.mark.parametrize(
    ("params", "param"),
    [({"group_by": "planet"}, "group_by"), ({"from": "yesterday"}, "from"), ({"format": "xml"}, "format")],
)
def test_bad_summary_query_is_a_400(gw: Gateway, params: dict[str, str], param: str) -> None:
    response = httpx.get(gw.base_url + "/v1/finance/summary", params=params, headers=ADMIN)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


async def test_workspace_price_overrides(gw: Gateway, http: httpx.AsyncClient) -> None:
    workspace = "ws-prices"
    key = _key(gw, workspace)
    url = "/admin/prices"
    scope = {"workspace_id": workspace}
    client = openai.AsyncOpenAI(base_url=gw.api_url, api_key=key["authorization"][7:], max_retries=0)

    async def cost() -> tuple[int, str]:
        raw = await client.chat.completions.with_raw_response.create(
            model="mock/mock-1", messages=[{"role": "user", "content": "one two three"}]
        )
        row = await gw.log_row(raw.headers["alephant-request-id"])
        return parse_usd(raw.headers["alephant-cost-usd"]), str(row.price_source)

    try:
        # mock-1 is $1/MTok in, $2/MTok out: 6 prompt tokens (3 words + 3) and 6 completion tokens
        # ("Mock reply to: one two three"): 6 x 1,000 + 6 x 2,000 nano-USD.
        assert await cost() == (18_000, "alephant catalog")
        negotiated = {"input_mtok": "10", "output_mtok": "20", "request_usd": "0.001", "note": "contract 7"}
        put = await http.put(url + "/mock/mock-1", params=scope, json=negotiated, headers=ADMIN)
        assert put.status_code == 200, put.text
        assert (put.json()["version"], put.json()["input_mtok"]) == (1, "10.000000000")
        await _wait_source(http, workspace, "mock/mock-1", "override:ws-prices:v1")
        # 6 x $10/MTok + 6 x $20/MTok + $0.001 = 60,000 + 120,000 + 1,000,000 nano
        assert await cost() == (60_000 + 120_000 + 1_000_000, "override:ws-prices:v1")
        # Other workspaces keep the list price.
        assert (await http.get(url + "/effective/mock/mock-1", headers=ADMIN)).json()["source"] == "alephant catalog"

        await http.put(url + "/mock/mock-1", params=scope, json={"input_mtok": "1", "output_mtok": "1"}, headers=ADMIN)
        await _wait_source(http, workspace, "mock/mock-1", "override:ws-prices:v2")
        assert await cost() == (12_000, "override:ws-prices:v2")
        listed = (await http.get(url, params=scope, headers=ADMIN)).json()["data"]
        assert [(p["model"], p["version"]) for p in listed] == [("mock/mock-1", 2)]

        # A custom model of a known provider: priced only in this workspace.
        custom = await http.put(url + "/openai/our-finetune", params=scope, json={"input_mtok": "3"}, headers=ADMIN)
        assert custom.status_code == 200
        await _wait_source(http, workspace, "openai/our-finetune", "override:ws-prices:v1")

        assert (await http.delete(url + "/mock/mock-1", params=scope, headers=ADMIN)).status_code == 200
        assert (await http.delete(url + "/mock/mock-1", params=scope, headers=ADMIN)).status_code == 404
        await _wait_source(http, workspace, "mock/mock-1", "alephant catalog")
        assert await cost() == (18_000, "alephant catalog")
    finally:
        await client.close()

    assert (await http.get(url, headers=key)).status_code == 403  # not an admin key
    bad = await http.put(url + "/nosuch/model", json={"input_mtok": "1"}, headers=ADMIN)
    assert bad.status_code == 400 and "nosuch" in bad.json()["error"]["message"]
    negative = await http.put(url + "/mock/mock-1", json={"input_mtok": "-1"}, headers=ADMIN)
    assert negative.status_code == 400 and negative.json()["error"]["param"] == "input_mtok"


async def _wait_source(http: httpx.AsyncClient, workspace: str, model: str, source: str) -> None:
    """Overrides reach the gateway's in-memory price book within key_refresh_interval (0.1 s in tests)."""
    deadline = time.monotonic() + 5
    url = f"/admin/prices/effective/{model}"
    while (await http.get(url, params={"workspace_id": workspace}, headers=ADMIN)).json().get("source") != source:
        assert time.monotonic() < deadline, f"{model} never priced by {source}"
        await asyncio.sleep(0.05)
