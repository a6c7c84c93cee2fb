"""Governance entities from the CLI against a running gateway's store (SQLite and PostgreSQL): workspaces,
departments, agents, and keys bound to them, taking effect in the running gateway without a restart.
"""

from __future__ import annotations

import json
import secrets

import openai
import orjson
import pytest

from tests.conftest import Gateway, SDKFactory

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]


async def test_entities_from_the_cli_govern_a_key(gateway: Gateway, sdk: SDKFactory) -> None:
    ws = "cli-" + secrets.token_hex(3)
    made = json.loads(
        gateway.cli(
            "workspaces", "create", ws, "--time-zone", "America/New_York", "--deny-models", "mock/mock-slow-*", "--json"
        ).stdout
    )[0]
    assert made["time_zone"] == "America/New_York" and made["policy"]["deny_models"] == ["mock/mock-slow-*"]
    assert ws in {w["id"] for w in json.loads(gateway.cli("workspaces", "list", "--json").stdout)}

    dep = json.loads(gateway.cli("departments", "create", "--workspace", ws, "--name", "Support", "--json").stdout)[0]
    assert [d["id"] for d in json.loads(gateway.cli("departments", "list", "-w", ws, "--json").stdout)] == [dep["id"]]

    gateway.cli(
        *("agents", "create", "helpdesk", "--workspace", ws, "--department", dep["id"], "--owner", "support-team"),
        *("--description", "answers tickets", "--max-tokens", "20"),
    )
    shown = json.loads(gateway.cli("agents", "show", "helpdesk", "--workspace", ws).stdout)
    assert (shown["owner"], shown["department_id"], shown["policy"]["max_tokens"]) == ("support-team", dep["id"], 20)
    assert [a["id"] for a in json.loads(gateway.cli("agents", "list", "-w", ws, "--json").stdout)] == ["helpdesk"]

    key = gateway.create_key(
        "helpdesk-key",
        *("--workspace", ws, "--department", dep["id"], "--agent", "helpdesk", "--scope", "admin"),
        *("--models", "mock/*", "--providers", "mock", "--deny-models", "mock/mock-embed-1"),
    )
    assert (key["agent_id"], key["department_id"], key["scopes"]) == ("helpdesk", dep["id"], ["admin"])
    assert key["policy"] == {"deny_models": ["mock/mock-embed-1"], "providers": ["mock"]}

    client = sdk(key["secret"])
    raw = await client.chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO, max_tokens=5)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.workspace_id, row.department_id, row.agent_id) == (ws, dep["id"], "helpdesk")
    assert [e["decision"] for e in orjson.loads(row.policy_events or "[]")] == ["allow", "allow"]
    with pytest.raises(openai.PermissionDeniedError) as capped:  # the agent's cap
        await client.chat.completions.create(model="mock/mock-1", messages=HELLO, max_tokens=21)
    assert "agent:helpdesk:max_tokens" in capped.value.message
    with pytest.raises(openai.PermissionDeniedError) as slow:  # the workspace's deny glob
        await client.chat.completions.create(model="mock/mock-slow-1", messages=HELLO)
    assert f"workspace:{ws}:deny_models" in slow.value.message


def test_cli_refuses_bad_input_with_one_line(gateway: Gateway) -> None:
    ws = "cli-bad-" + secrets.token_hex(3)
    gateway.cli("workspaces", "create", ws)
    duplicate = gateway.cli("workspaces", "create", ws, check=False)
    assert duplicate.returncode == 2 and f"workspace '{ws}' exists already" in duplicate.stderr
    zone = gateway.cli("workspaces", "create", ws + "x", "--time-zone", "Nowhere/City", check=False)
    assert zone.returncode == 2 and "IANA" in zone.stderr and "Traceback" not in zone.stderr
    ghost = gateway.cli("keys", "create", "--name", "k", "--workspace", ws, "--agent", "ghost", check=False)
    assert ghost.returncode == 1 and "no agent 'ghost'" in ghost.stderr
    agent = gateway.cli("agents", "create", "bad agent", "--workspace", ws, check=False)
    assert agent.returncode == 2 and "id" in agent.stderr
    missing = gateway.cli("agents", "show", "nobody", "--workspace", ws, check=False)
    assert missing.returncode == 2 and "no agent 'nobody'" in missing.stderr
    cap = gateway.cli("keys", "create", "--name", "k", "--max-tokens", "0", check=False)
    assert cap.returncode == 2 and "--max-tokens" in cap.stderr
    provider = gateway.cli("provider-keys", "add", "--provider", "nope", "--name", "n", check=False)
    assert provider.returncode == 2 and "unknown provider 'nope'" in provider.stderr


def test_cli_deletes_only_what_nothing_refers_to(gateway: Gateway) -> None:
    ws = "cli-del-" + secrets.token_hex(3)
    gateway.cli("workspaces", "create", ws, "--time-zone", "Europe/Paris")
    dep = json.loads(gateway.cli("departments", "create", "-w", ws, "--name", "Ops", "--json").stdout)[0]
    gateway.cli("agents", "create", "worker", "-w", ws, "--department", dep["id"])
    key = json.loads(
        gateway.cli("keys", "create", "--name", "k", "--workspace", ws, "--agent", "worker", "--json").stdout
    )

    busy = gateway.cli("agents", "delete", "worker", "-w", ws, check=False)
    assert busy.returncode == 2 and key["id"] in busy.stderr and "Traceback" not in busy.stderr
    busy_dep = gateway.cli("departments", "delete", dep["id"], "-w", ws, check=False)
    assert busy_dep.returncode == 2 and "1 agent (worker)" in busy_dep.stderr
    assert gateway.cli("workspaces", "delete", "default", check=False).returncode == 2

    # A budget made without --tz follows the workspace's calendar.
    budget = json.loads(
        gateway.cli(
            "budgets", "create", "-w", ws, "--scope", "workspace", "--period", "daily", "--limit", "1", "--json"
        ).stdout
    )
    assert budget["time_zone"] == "Europe/Paris"
    gateway.cli("budgets", "delete", budget["id"], "-w", ws)

    gateway.cli("keys", "revoke", key["id"])
    assert "Deleted agent worker" in gateway.cli("agents", "delete", "worker", "-w", ws).stdout
    gateway.cli("departments", "delete", dep["id"], "-w", ws)
    gateway.cli("workspaces", "delete", ws)
    assert ws not in {w["id"] for w in json.loads(gateway.cli("workspaces", "list", "--json").stdout)}
    missing = gateway.cli("agents", "delete", "worker", "-w", ws, check=False)
    assert missing.returncode == 2 and "no agent 'worker'" in missing.stderr
