"""Runs and traces through a real gateway: start/end runs, implicit runs, the trace tree, spans, workspaces, CLI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, SDKFactory

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hello there"}]
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _http(gateway: Gateway, key: str = MASTER_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.base_url, headers={"authorization": f"Bearer {key}"}, timeout=10)


async def _wait_requests(http: httpx.AsyncClient, run_id: str, count: int) -> dict[str, Any]:
    """The run's tree once the batch writer has stored ``count`` of its requests."""
    for _ in range(100):
        response = await http.get(f"/v1/runs/{run_id}")
        if response.status_code == 200 and response.json()["totals"]["requests"] >= count:
            tree: dict[str, Any] = response.json()
            return tree
        await _sleep(0.05)
    raise AssertionError(f"run {run_id} did not reach {count} requests: {response.text}")


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node["children"]:
        found += _walk(child)
    return found


async def test_explicit_run_tree_with_sessions_attempts_spans_and_totals(gateway: Gateway, sdk: SDKFactory) -> None:
    run_id = _unique("run")
    async with _http(gateway) as http:
        started = await http.post("/v1/runs", json={"run_id": run_id, "agent_id": "planner", "metadata": {"task": "t"}})
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "running" and started.json()["metadata"] == {"task": "t"}

        ids = []
        for session, model in (("s1", "mock/mock-1"), ("s1", "mock/mock-1"), ("s2", "mock/mock-1")):
            client = sdk(default_headers={"Alephant-Run-Id": run_id, "Alephant-Session-Id": session})
            raw = await client.chat.completions.with_raw_response.create(model=model, messages=HELLO)
            ids.append(raw.headers["alephant-request-id"])
        failing = sdk(default_headers={"Alephant-Run-Id": run_id, "Alephant-Session-Id": "s2"})
        with pytest.raises(openai.APIStatusError):
            await failing.chat.completions.create(model="mock/mock-error-503", messages=HELLO)

        span = await http.post(
            f"/v1/runs/{run_id}/spans",
            json={
                "kind": "tool",
                "name": "web_search",
                "parent_id": ids[0],
                "started_at": "2026-11-26T12:00:00Z",
                "ended_at": "2026-11-26T12:00:01.5Z",
                "cost_usd": "0.0025",
                "attributes": {"query": "weather"},
            },
        )
        assert span.status_code == 201, span.text
        ended = await http.post(f"/v1/runs/{run_id}/end", json={"status": "completed"})
        assert ended.status_code == 200 and ended.json()["status"] == "completed"
        again = await http.post(f"/v1/runs/{run_id}/end", json={"status": "failed"})
        assert again.status_code == 200 and again.json() == ended.json()  # ending twice changes nothing

        tree = await _wait_requests(http, run_id, 4)
    assert tree["kind"] == "run" and tree["explicit"] and tree["status"] == "completed"
    assert tree["agent_id"] == "planner"
    sessions = {node["id"]: node for node in tree["children"] if node["kind"] == "session"}
    assert set(sessions) == {"s1", "s2"}
    assert [child["id"] for child in sessions["s1"]["children"]] == ids[:2]
    nodes = {node["id"]: node for node in _walk(tree)}
    first = nodes[ids[0]]
    assert first["parent_id"] == "s1" and first["status"] == "ok" and first["prompt_tokens"] > 0
    kinds = [child["kind"] for child in first["children"]]
    assert kinds == ["attempt", "tool"]
    tool = first["children"][1]
    assert tool["parent_id"] == ids[0] and tool["duration_ms"] == 1500.0 and tool["cost_nano"] == 2_500_000
    failed = [node for node in sessions["s2"]["children"] if node["status"] == "error"]
    assert len(failed) == 1 and failed[0]["http_status"] == 502  # the upstream's 503, as the gateway answers it
    attempt = failed[0]["children"][0]
    assert (attempt["kind"], attempt["status"], attempt["http_status"]) == ("attempt", "error", 503)

    totals = tree["totals"]
    rows = [await gateway.log_row(i) for i in ids]
    assert totals["requests"] == 4 and totals["errors"] == 1 and totals["spans"] == 1
    assert totals["prompt_tokens"] == sum(r.prompt_tokens for r in rows)
    assert totals["cost_nano"] == sum(r.cost_nano for r in rows) + 2_500_000


async def test_implicit_run_from_headers_is_listed_and_traced(gateway: Gateway, sdk: SDKFactory) -> None:
    run_id, agent = _unique("implicit"), _unique("agent")
    client = sdk(default_headers={"Alephant-Run-Id": run_id, "Alephant-Agent-Id": agent})
    for _ in range(2):
        await client.chat.completions.create(model="mock/mock-1", messages=HELLO)
    async with _http(gateway) as http:
        tree = await _wait_requests(http, run_id, 2)
        assert tree["status"] == "implicit" and not tree["explicit"] and tree["agent_id"] == agent
        assert [node["kind"] for node in tree["children"]] == ["request", "request"]
        listed = (await http.get("/v1/runs", params={"agent_id": agent})).json()["data"]
        assert [(r["id"], r["status"], r["requests"]) for r in listed] == [(run_id, "implicit", 2)]
        assert listed[0]["prompt_tokens"] == tree["totals"]["prompt_tokens"]
        assert listed[0]["cost_nano"] == tree["totals"]["cost_nano"]
        # Ending a run nobody started is a 404 that says how runs start.
        missing = await http.post(f"/v1/runs/{run_id}/end", json={})
        assert missing.status_code == 404 and "POST /v1/runs" in missing.json()["error"]["message"]


async def test_listing_filters_and_pages(gateway: Gateway) -> None:
    agent = _unique("lister")
    async with _http(gateway) as http:
        made = []
        for index in range(5):
            response = await http.post("/v1/runs", json={"agent_id": agent, "metadata": {"n": index}})
            made.append(response.json()["id"])
        await http.post(f"/v1/runs/{made[0]}/end", json={"status": "failed"})
        seen: list[str] = []
        cursor = None
        while True:
            params = {"agent_id": agent, "limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/v1/runs", params=params)).json()
            seen += [run["id"] for run in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(made) and len(seen) == 5
        failed = (await http.get("/v1/runs", params={"agent_id": agent, "status": "failed"})).json()["data"]
        assert [run["id"] for run in failed] == [made[0]] and failed[0]["metadata"] == {"n": 0}
        running = (await http.get("/v1/runs", params={"agent_id": agent, "status": "running"})).json()["data"]
        assert len(running) == 4
        future = (await http.get("/v1/runs", params={"agent_id": agent, "from": "2999-01-01T00:00:00Z"})).json()
        assert future["data"] == []


async def test_runs_are_scoped_to_the_workspace(gateway: Gateway, sdk: SDKFactory) -> None:
    other = gateway.create_key("runs-other", "--workspace", _unique("ws"))
    run_id = _unique("mine")
    async with _http(gateway) as mine, _http(gateway, other["secret"]) as theirs:
        assert (await mine.post("/v1/runs", json={"run_id": run_id})).status_code == 201
        await sdk(default_headers={"Alephant-Run-Id": run_id}).chat.completions.create(
            model="mock/mock-1", messages=HELLO
        )
        await _wait_requests(mine, run_id, 1)
        assert (await theirs.get(f"/v1/runs/{run_id}")).status_code == 404
        assert (await theirs.post(f"/v1/runs/{run_id}/end", json={})).status_code == 404
        assert (await theirs.get("/v1/runs")).json()["data"] == []
        # The same id is free in the other workspace, and stays separate.
        assert (await theirs.post("/v1/runs", json={"run_id": run_id})).status_code == 201
        assert (await theirs.get(f"/v1/runs/{run_id}")).json()["totals"]["requests"] == 0
        assert (await theirs.get("/v1/runs", params={"workspace_id": "default"})).status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", "/v1/runs", {"run_id": "has space"}, 400, "run_id"),
        ("POST", "/v1/runs", {"agent_id": "x" * 129}, 400, "agent_id"),
        ("POST", "/v1/runs", {"metadata": "not an object"}, 400, "metadata"),
        ("POST", "/v1/runs", {"unknown": 1}, 400, "unknown"),
        ("POST", "/v1/runs/nope-{store}/end", {"status": "paused"}, 400, "status"),
        ("GET", "/v1/runs?status=sleeping", None, 400, "status"),
        ("GET", "/v1/runs?limit=0", None, 400, "limit"),
        ("GET", "/v1/runs?from=yesterday", None, 400, "from"),
        ("GET", "/v1/runs?cursor=garbage", None, 400, "cursor"),
        ("GET", "/v1/runs?agent=x", None, 400, "agent"),
        ("GET", "/v1/runs/nope-{store}", None, 404, None),
        ("POST", "/v1/runs/nope-{store}/spans", {"kind": "tool", "name": "x", "started_at": "2026-01-01"}, 404, None),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    gateway: Gateway, method: str, path: str, body: Any, status: int, param: str | None
) -> None:
    async with _http(gateway) as http:
        response = await http.request(method, path.format(store=gateway.store), json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


async def test_duplicate_run_and_span_ids_are_409_and_keys_are_required(gateway: Gateway) -> None:
    run_id = _unique("dup")
    async with _http(gateway) as http:
        assert (await http.post("/v1/runs", json={"run_id": run_id})).status_code == 201
        duplicate = await http.post("/v1/runs", json={"run_id": run_id})
        assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "run_exists"
        span = {"id": "span-1", "kind": "custom", "name": "step", "started_at": "2026-11-26T12:00:00Z"}
        assert (await http.post(f"/v1/runs/{run_id}/spans", json=span)).status_code == 201
        assert (await http.post(f"/v1/runs/{run_id}/spans", json=span)).status_code == 409
        backwards = {**span, "id": "span-2", "ended_at": "2026-11-26T11:00:00Z"}
        assert (await http.post(f"/v1/runs/{run_id}/spans", json=backwards)).json()["error"]["param"] == "ended_at"
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        assert (await anonymous.get("/v1/runs")).status_code == 401
        assert (await anonymous.get("/v1/logs")).status_code == 401


async def test_cli_renders_the_run_tree(gateway: Gateway, sdk: SDKFactory) -> None:
    run_id = _unique("cli")
    async with _http(gateway) as http:
        await http.post("/v1/runs", json={"run_id": run_id, "agent_id": "cli-agent"})
        raw = await sdk(
            default_headers={"Alephant-Run-Id": run_id, "Alephant-Session-Id": "conversation-1"}
        ).chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
        await http.post(
            f"/v1/runs/{run_id}/spans",
            json={"kind": "payment", "name": "pay-api", "session_id": "conversation-1", "started_at": "2026-11-26"},
        )
        await _wait_requests(http, run_id, 1)
    shown = gateway.cli("runs", "show", run_id).stdout
    request_id = raw.headers["alephant-request-id"]
    for expected in (f"run {run_id}", "session conversation-1", f"request {request_id}", "attempt", "payment"):
        assert expected in shown, shown
    listed = gateway.cli("runs", "list", "--agent", "cli-agent", "--json").stdout
    assert run_id in listed
    missing = gateway.cli("runs", "show", "no-such-run", check=False)
    assert missing.returncode == 1 and "no run" in missing.stdout
