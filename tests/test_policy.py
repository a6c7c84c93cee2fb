"""Model policy end to end: the matrix of issue 6 through the openai SDK against a real gateway (SQLite and
PostgreSQL), each refusal with its status, code and message, and the policy events on the request's log row.
Plus the layering rules themselves (``decide``), in-process.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import text

from server.governance.policy import Layer, ModelPolicy, decide, token_cap
from server.storage import Database
from tests.conftest import MASTER_KEY, Gateway, SDKFactory

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def admin(gateway: Gateway, method: str, path: str, workspace: str | None = None, **body: Any) -> dict[str, Any]:
    params = {"workspace_id": workspace} if workspace else None
    answer = httpx.request(method, f"{gateway.base_url}/admin{path}", headers=ADMIN, params=params, json=body or None)
    assert answer.status_code < 300, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture
def governed(gateway: Gateway) -> dict[str, Any]:
    """A workspace (providers: mock only; denies mock-slow-100), an agent (denies mock-slow-300) and a key
    (models mock/*, denies mock-slow-200, max_tokens 50), the key created last so its arrival proves the rest
    is loaded too (one snapshot)."""
    ws = "pm-" + secrets.token_hex(3)
    admin(gateway, "POST", "/workspaces", id=ws, policy={"providers": ["mock"], "deny_models": ["mock/mock-slow-100"]})
    admin(gateway, "POST", "/agents", ws, id="planner", policy={"deny_models": ["mock/mock-slow-300"]})
    admin(gateway, "POST", "/agents", ws, id="writer")
    key = admin(
        gateway,
        "POST",
        "/keys",
        ws,
        name="matrix",
        models=["mock/*"],
        policy={"deny_models": ["mock/mock-slow-200"], "max_tokens": 50},
    )
    bound = admin(gateway, "POST", "/keys", ws, name="bound", agent_id="writer")
    gateway.wait_key(bound["secret"], accepted=True)
    return {"workspace": ws, "key": key, "bound": bound}


async def events_of(gateway: Gateway, request_id: str) -> list[dict[str, str]]:
    row = await gateway.log_row(request_id)
    assert row.policy_events is not None
    events: list[dict[str, str]] = orjson.loads(row.policy_events)
    return events


async def denied(
    gateway: Gateway, client: openai.AsyncOpenAI, model: str, **options: Any
) -> tuple[openai.APIStatusError, list[dict[str, str]]]:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=model, messages=HELLO, **options)
    events = await events_of(gateway, caught.value.response.headers["alephant-request-id"])
    return caught.value, events


async def test_allowed_model_records_the_rules_that_matched(
    gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any]
) -> None:
    ws, key = governed["workspace"], governed["key"]
    raw = await sdk(key["secret"]).chat.completions.with_raw_response.create(
        model="mock/mock-1", messages=HELLO, max_tokens=10
    )
    assert raw.http_response.status_code == 200
    events = await events_of(gateway, raw.headers["alephant-request-id"])
    assert events == [
        {
            "decision": "allow",
            "rule": f"workspace:{ws}:providers,key:{key['id']}:allow_models",
            "reason": "'mock/mock-1' is allowed",
        },
        {"decision": "allow", "rule": f"key:{key['id']}:max_tokens", "reason": "max_tokens 10 is within the cap of 50"},
    ]


@pytest.mark.parametrize(
    ("model", "headers", "rule"),
    [
        ("mock/mock-slow-100", {}, "workspace:{ws}:deny_models"),
        ("mock/mock-slow-200", {}, "key:{key}:deny_models"),
        ("mock/mock-slow-300", {"Alephant-Agent-Id": "planner"}, "agent:planner:deny_models"),
        ("fake/gpt-4o-mini", {}, "workspace:{ws}:providers"),
    ],
    ids=["workspace-deny", "key-deny", "agent-deny", "provider-outside-allowlist"],
)
async def test_denied_models_name_the_rule(
    gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any], model: str, headers: dict[str, str], rule: str
) -> None:
    expected = rule.format(ws=governed["workspace"], key=governed["key"]["id"])
    client = sdk(governed["key"]["secret"], default_headers=headers)
    error, events = await denied(gateway, client, model)
    assert isinstance(error, openai.PermissionDeniedError)
    assert (error.status_code, error.code) == (403, "policy_denied")
    assert expected in error.message and model in error.message
    assert events[-1]["decision"] == "deny" and events[-1]["rule"] == expected


async def test_agent_policy_applies_only_when_acting_as_the_agent(
    gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any]
) -> None:
    client = sdk(governed["key"]["secret"], default_headers={"Alephant-Agent-Id": "someone-unregistered"})
    reply = await client.chat.completions.create(model="mock/mock-slow-300", messages=HELLO)
    assert reply.choices[0].message.content == "Mock reply to: hi"


async def test_max_tokens_above_the_cap_is_refused_naming_the_cap(
    gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any]
) -> None:
    error, events = await denied(gateway, sdk(governed["key"]["secret"]), "mock/mock-1", max_tokens=51)
    assert (error.status_code, error.code) == (403, "policy_denied")
    assert "max_tokens 51 is above the cap of 50" in error.message and "at most 50" in error.message
    assert events[-1] == {
        "decision": "deny",
        "rule": f"key:{governed['key']['id']}:max_tokens",
        "reason": "max_tokens 51 is above the cap of 50",
    }
    reply = await sdk(governed["key"]["secret"]).chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert reply.choices[0].message.content  # no limit named: the cap invents none


async def test_a_bound_key_cannot_act_as_another_agent(
    gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any]
) -> None:
    bound = governed["bound"]
    raw = await sdk(bound["secret"]).chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert row.agent_id == "writer"  # the bound agent, without any header
    client = sdk(bound["secret"], default_headers={"Alephant-Agent-Id": "planner"})
    error, events = await denied(gateway, client, "mock/mock-1")
    assert (error.status_code, error.code) == (403, "policy_denied")
    assert "bound to agent 'writer'" in error.message and "'planner'" in error.message
    assert events == [{"decision": "deny", "rule": f"key:{bound['id']}:agent", "reason": events[0]["reason"]}]


async def test_expired_and_revoked_keys_are_401(gateway: Gateway, sdk: SDKFactory, governed: dict[str, Any]) -> None:
    ws, key = governed["workspace"], governed["key"]
    admin(gateway, "DELETE", f"/keys/{key['id']}", ws)
    gateway.wait_key(key["secret"], accepted=False)
    with pytest.raises(openai.AuthenticationError) as revoked:
        await sdk(key["secret"]).chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert revoked.value.code == "invalid_api_key" and "Invalid or revoked" in revoked.value.message

    short = admin(
        gateway, "POST", "/keys", ws, name="short", expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    gateway.wait_key(short["secret"], accepted=True)
    async with Database(gateway.database_url) as database, database.engine.begin() as conn:
        past = datetime.now(tz=UTC) - timedelta(minutes=1)
        await conn.execute(text("UPDATE api_keys SET expires_at = :t WHERE id = :id"), {"t": past, "id": short["id"]})
        await conn.execute(text("UPDATE state_version SET version = version + 1 WHERE name = 'keys'"))
    gateway.wait_key(short["secret"], accepted=False)
    with pytest.raises(openai.AuthenticationError) as expired:
        await sdk(short["secret"]).chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert expired.value.code == "invalid_api_key" and "expired at" in expired.value.message


def test_model_listing_follows_every_layer(gateway: Gateway, governed: dict[str, Any]) -> None:
    headers = {"authorization": f"Bearer {governed['key']['secret']}"}
    listed = httpx.get(gateway.api_url + "/models", headers=headers).json()["data"]
    ids = {row["id"] for row in listed}
    assert "mock/mock-1" in ids and "fake/gpt-4o-mini" not in ids and "mock/mock-slow-100" not in ids


# --- the layering rules, in-process ---


def layer(rule: str, **policy: Any) -> Layer:
    return Layer(rule, ModelPolicy.parse(policy, allow=policy.pop("allow", None)))


def test_deny_wins_over_allow_and_every_layer_must_allow() -> None:
    layers = [layer("workspace:w", allow_models=["openai/*"]), layer("key:k", deny_models=["openai/gpt-4o"])]
    assert decide(layers, "openai/gpt-4o").rule == "key:k:deny_models"
    assert decide(layers, "anthropic/claude").rule == "workspace:w:allow_models"
    verdict = decide(layers, "openai/gpt-4o-mini")
    assert verdict.allowed and verdict.rule == "workspace:w:allow_models"
    assert decide([], "any/model").rule == "default:allow"


def test_the_smallest_cap_wins() -> None:
    assert token_cap([layer("workspace:w", max_tokens=100), layer("agent:a", max_tokens=10)]) == (
        10,
        "agent:a:max_tokens",
    )
    assert token_cap([layer("key:k", deny_models=["x/*"])]) is None
