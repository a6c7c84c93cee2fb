"""The MCP tools beyond ``chat``: budgets, runs, spend and paid endpoints, through a real gateway with the
official mcp SDK client. Each tool goes through the same services as the HTTP routes; refusals come back as
tool errors naming the gateway's code, and every tool call is a log row (``mcp_tool``) in its run's trace.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp.types import TextResourceContents

from server.storage import Database, LogQuery
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.paid_upstream import PaidUpstream
from tests.test_mcp import over_http, text_of

pytestmark = pytest.mark.anyio

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PAY_TO = "0x" + "cd" * 20
TOOLS = {
    "chat",
    "list_models",
    "check_budget",
    "start_run",
    "end_run",
    "get_run",
    "record_spend",
    "get_spend",
    "list_paid_endpoints",
    "invoke_paid_endpoint",
}


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
            }
        }
    }
    with running_gateway(tmp_path_factory.mktemp("mcp-governed"), config=config) as gw:
        yield gw


async def test_every_tool_is_listed_with_its_schemas_and_hints(gateway: Gateway) -> None:
    async with over_http(gateway, MASTER_KEY, "auto") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert set(tools) == TOOLS
    assert all(tool.output_schema for tool in tools.values())
    for name in ("check_budget", "get_run", "get_spend", "list_paid_endpoints", "list_models"):
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint, name
    paying = tools["invoke_paid_endpoint"].annotations
    assert paying is not None and paying.destructive_hint and not paying.read_only_hint
    assert {"amount_usd", "vendor", "tool", "idempotency_key"} <= set(tools["record_spend"].input_schema["required"])
    assert resources == {"alephant://models", "alephant://paid-endpoints", "alephant://budgets/all"}
    assert {"alephant://runs/{run_id}", "alephant://budgets/{scope}"} <= templates


async def test_a_run_through_tools_is_traced_costed_and_spent(gateway: Gateway) -> None:
    async with over_http(gateway, MASTER_KEY, "auto", **{"Alephant-Agent-Id": "mcp-agent"}) as client:
        started = await client.call_tool("start_run", {"run_id": "mcp-run-1", "metadata": {"task": "demo"}})
        assert not started.is_error, text_of(started)
        run = started.structured_content
        assert run is not None
        assert (run["run_id"], run["status"], run["agent_id"]) == ("mcp-run-1", "running", "mcp-agent")
        assert run["metadata"] == {"task": "demo"}
        again = await client.call_tool("start_run", {"run_id": "mcp-run-1"})
        assert again.is_error and "run_exists" in text_of(again)

        chat = await client.call_tool("chat", {"model": "mock/mock-1", "prompt": "step one", "run_id": "mcp-run-1"})
        assert not chat.is_error and chat.structured_content is not None
        model_cost = chat.structured_content["cost_usd"]

        spend = {"amount_usd": "0.02", "vendor": "serpapi", "tool": "web_search", "idempotency_key": "mcp-s-1"}
        first = await client.call_tool("record_spend", {**spend, "run_id": "mcp-run-1"})
        assert not first.is_error and first.structured_content is not None, text_of(first)
        entry = first.structured_content
        assert (entry["kind"], entry["amount_usd"], entry["replayed"]) == ("tool_spend", "0.020000000", False)
        assert (entry["agent_id"], entry["run_id"]) == ("mcp-agent", "mcp-run-1")
        replay = await client.call_tool("record_spend", {**spend, "run_id": "mcp-run-1"})
        assert replay.structured_content is not None
        assert replay.structured_content["id"] == entry["id"] and replay.structured_content["replayed"] is True
        conflict = await client.call_tool("record_spend", {**spend, "amount_usd": "0.03", "run_id": "mcp-run-1"})
        assert conflict.is_error and "idempotency_conflict" in text_of(conflict)
        bad = await client.call_tool("record_spend", {**spend, "amount_usd": "twelve", "idempotency_key": "x"})
        assert bad.is_error and "amount_usd" in text_of(bad)

        spent = await client.call_tool("get_spend", {"run_id": "mcp-run-1"})
        assert spent.structured_content is not None, text_of(spent)
        report = spent.structured_content
        assert [e["id"] for e in report["entries"]] == [entry["id"]]
        assert report["tool_spend_usd"] == "0.020000000" and report["model_cost_usd"] == model_cost

        ended = await client.call_tool("end_run", {"run_id": "mcp-run-1", "status": "completed"})
        assert ended.structured_content is not None and ended.structured_content["status"] == "completed"
        twice = await client.call_tool("end_run", {"run_id": "mcp-run-1", "status": "failed"})
        assert twice.structured_content is not None and twice.structured_content["status"] == "completed"
        missing = await client.call_tool("end_run", {"run_id": "never-started"})
        assert missing.is_error and "run_not_found" in text_of(missing)

        deadline = time.monotonic() + 5
        while True:  # the log rows are written in batches
            traced = await client.call_tool("get_run", {"run_id": "mcp-run-1"})
            assert traced.structured_content is not None, text_of(traced)
            trace = traced.structured_content
            kinds = [node["kind"] for node in trace["tree"]["children"]]
            names = {node["name"] for node in trace["tree"]["children"] if node["kind"] == "tool"}
            done = "request" in kinds and {"mcp record_spend", "mcp end_run"} <= names
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert trace["status"] == "completed" and trace["agent_id"] == "mcp-agent"
        assert trace["cost_usd"] == model_cost and trace["prompt_tokens"] > 0
        assert {"mcp record_spend", "mcp end_run"} <= names, names  # tool calls are spans of the run
        resource = (await client.read_resource("alephant://runs/mcp-run-1")).contents[0]
        assert isinstance(resource, TextResourceContents)
        assert json.loads(resource.text)["run_id"] == "mcp-run-1"

    async with Database(gateway.database_url) as database:
        tool_rows = await LogQuery(database).count(endpoint="mcp_tool", agent_id="mcp-agent", status="error")
    assert tool_rows >= 3  # run_exists, idempotency_conflict, the bad amount (and run_not_found): each a row


async def test_an_exhausted_budget_is_a_tool_error_and_check_budget_says_why(gateway: Gateway) -> None:
    key = gateway.create_key("mcp-budgeted", "--workspace", "mcp-budget")["secret"]
    async with httpx.AsyncClient() as http:
        created = await http.post(
            gateway.base_url + "/admin/budgets?workspace_id=mcp-budget",
            headers=ADMIN,
            json={"scope": "workspace", "period": "total", "limit_nano": 1000},
        )
    assert created.status_code == 201, created.text
    async with over_http(gateway, key, "legacy") as client:
        deadline = time.monotonic() + 5
        while True:  # the limits snapshot reloads within key_refresh_interval
            checked = await client.call_tool("check_budget", {"estimate_usd": "0.01"})
            assert checked.structured_content is not None, text_of(checked)
            if checked.structured_content["budgets"] or time.monotonic() > deadline:
                break
        report: dict[str, Any] = checked.structured_content
        assert report["fits"] is False and report["estimate_usd"] == "0.010000000"
        (budget,) = report["budgets"]
        assert (budget["scope"], budget["scope_value"], budget["limit_usd"]) == (
            "workspace",
            "mcp-budget",
            "0.000001000",
        )
        assert budget["resets_at"] is None and budget["remaining_usd"] == "0.000001000"
        small = await client.call_tool("check_budget", {"estimate_usd": "0.0000005"})
        assert small.structured_content is not None and small.structured_content["fits"] is True

        refused = await client.call_tool("chat", {"model": "mock/mock-1", "prompt": "hi"})
        assert refused.is_error and "budget_exceeded" in text_of(refused)
        assert "0.000001000" in text_of(refused)

        listed = (await client.read_resource("alephant://budgets/all")).contents[0]
        assert (
            isinstance(listed, TextResourceContents) and json.loads(listed.text)["budgets"][0]["scope"] == "workspace"
        )
        empty = (await client.read_resource("alephant://budgets/run")).contents[0]
        assert isinstance(empty, TextResourceContents) and json.loads(empty.text)["budgets"] == []


async def test_agents_buy_from_paid_endpoints_within_policy(gateway: Gateway, upstream: PaidUpstream) -> None:
    async with httpx.AsyncClient() as http:
        wallet = await http.post(gateway.base_url + "/admin/wallets", headers=ADMIN, json={"agent_id": "mcp-buyer"})
    assert wallet.status_code == 201, wallet.text
    url = gateway.base_url + "/paid/weather"
    async with over_http(gateway, MASTER_KEY, "auto", **{"Alephant-Agent-Id": "mcp-buyer"}) as client:
        listed = await client.call_tool("list_paid_endpoints", {})
        assert listed.structured_content is not None
        (endpoint,) = listed.structured_content["endpoints"]
        assert (endpoint["path"], endpoint["price_usd"], endpoint["pay_to"].lower()) == (
            "/paid/weather",
            "0.010000000",
            PAY_TO,
        )
        cheap = await client.call_tool("invoke_paid_endpoint", {"url": url, "max_price_usd": "0.001"})
        assert cheap.is_error and "payment_not_allowed" in text_of(cheap)
        before = upstream.hits
        bought = await client.call_tool("invoke_paid_endpoint", {"url": url, "max_price_usd": "0.05"})
        assert not bought.is_error and bought.structured_content is not None, text_of(bought)
        result = bought.structured_content
        assert result["paid"] is True and result["status"] == 200 and result["amount_usd"] == "0.010000000"
        assert json.loads(result["body"])["weather"] == "sunny" and upstream.hits == before + 1
        spent = await client.call_tool("get_spend", {})
        assert spent.structured_content is not None
        assert spent.structured_content["payment_spend_usd"] == "0.010000000"
        nowallet = await client.call_tool(
            "invoke_paid_endpoint", {"url": url, "max_price_usd": "0.05", "agent_id": "no-wallet"}
        )
        assert nowallet.is_error and "wallet_not_found" in text_of(nowallet)
