"""The admin API over HTTP (httpx) against a real gateway on SQLite and PostgreSQL: CRUD of workspaces,
departments, agents, keys and provider keys; workspace scoping of admin-scoped keys; 400/404/409; and the
OpenAPI document generated from the models.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import Any

import anyio
import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway


@pytest.fixture
def master(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url + "/admin", headers={"authorization": f"Bearer {MASTER_KEY}"}) as c:
        yield c


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_workspace_department_agent_crud(master: httpx.Client) -> None:
    ws = unique("crud")
    workspace = created(master.post("/workspaces", json={"id": ws, "name": "CRUD", "time_zone": "Europe/Paris"}))
    assert workspace["time_zone"] == "Europe/Paris" and workspace["policy"]["deny_models"] == []
    assert master.get(f"/workspaces/{ws}").json()["name"] == "CRUD"
    assert ws in {w["id"] for w in master.get("/workspaces").json()}
    changed = master.patch(f"/workspaces/{ws}", json={"policy": {"deny_models": ["openai/*"], "max_tokens": 9}})
    assert changed.json()["policy"]["deny_models"] == ["openai/*"] and changed.json()["name"] == "CRUD"

    scoped = {"workspace_id": ws}
    dep = created(master.post("/departments", params=scoped, json={"name": "Research"}))
    assert dep["id"].startswith("dep_") and dep["workspace_id"] == ws
    assert [d["id"] for d in master.get("/departments", params=scoped).json()] == [dep["id"]]
    assert master.get(f"/departments/{dep['id']}", params=scoped).json()["name"] == "Research"

    agent = {"id": "triage.bot:v1", "department_id": dep["id"], "owner": "ops", "description": "sorts tickets"}
    made = created(master.post("/agents", params=scoped, json={**agent, "metadata": {"tier": 1}}))
    assert made["department_id"] == dep["id"] and made["metadata"] == {"tier": 1}
    assert master.get("/agents/triage.bot:v1", params=scoped).json()["owner"] == "ops"
    patched = master.patch("/agents/triage.bot:v1", params=scoped, json={"owner": "sre"}).json()
    assert patched["owner"] == "sre" and patched["description"] == "sorts tickets"
    assert [a["id"] for a in master.get("/agents", params=scoped).json()] == ["triage.bot:v1"]
    # The same agent id in another workspace is another agent.
    assert master.get("/agents/triage.bot:v1").status_code == 404


def test_bad_input_unknown_ids_and_duplicates(master: httpx.Client) -> None:
    ws = unique("errors")
    created(master.post("/workspaces", json={"id": ws}))
    duplicate = master.post("/workspaces", json={"id": ws})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
    assert ws in duplicate.json()["error"]["message"]

    bad_zone = master.post("/workspaces", json={"id": unique("tz"), "time_zone": "Mars/Olympus"})
    assert bad_zone.status_code == 400 and bad_zone.json()["error"]["param"] == "time_zone"
    assert "IANA" in bad_zone.json()["error"]["message"]
    bad_id = master.post("/agents", json={"id": "has space"})
    assert bad_id.status_code == 400 and bad_id.json()["error"]["param"] == "id"
    unknown_field = master.post("/keys", json={"name": "x", "modles": []})
    assert unknown_field.status_code == 400 and unknown_field.json()["error"]["param"] == "modles"
    bad_cap = master.post("/keys", json={"name": "x", "policy": {"max_tokens": 0}})
    assert bad_cap.status_code == 400 and bad_cap.json()["error"]["param"] == "policy.max_tokens"
    not_json = master.post("/agents", content=b"{oops")
    assert not_json.status_code == 400

    scoped = {"workspace_id": ws}
    ghost_dep = master.post("/agents", params=scoped, json={"id": "a1", "department_id": "dep_none"})
    assert ghost_dep.status_code == 400 and ghost_dep.json()["error"]["param"] == "department_id"
    ghost_agent = master.post("/keys", params=scoped, json={"name": "k", "agent_id": "nobody"})
    assert ghost_agent.status_code == 400 and "No agent 'nobody'" in ghost_agent.json()["error"]["message"]
    created(master.post("/departments", params=scoped, json={"name": "Ops", "id": unique("ops")}))
    same_name = master.post("/departments", params=scoped, json={"name": "Ops"})
    assert same_name.status_code == 409
    created(master.post("/agents", params=scoped, json={"id": "a1"}))
    assert master.post("/agents", params=scoped, json={"id": "a1"}).status_code == 409

    for path in ("/workspaces/nope", "/agents/nope", "/departments/nope", "/keys/key_nope"):
        missing = master.get(path, params=scoped if not path.startswith("/workspaces") else None)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["code"] == "not_found"
    assert master.delete("/provider-keys/pk_nope", params=scoped).status_code == 404
    assert master.patch("/keys/key_nope", params=scoped, json={"models": []}).status_code == 404


def test_keys_crud_and_admin_scoping(gateway: Gateway, master: httpx.Client) -> None:
    a, b = unique("team-a"), unique("team-b")
    created(master.post("/workspaces", json={"id": a}))
    created(master.post("/workspaces", json={"id": b}))
    created(master.post("/agents", params={"workspace_id": b}, json={"id": "b-agent"}))
    key_b = created(master.post("/keys", params={"workspace_id": b}, json={"name": "b-user"}))

    admin_a = created(master.post("/keys", params={"workspace_id": a}, json={"name": "a-admin", "scopes": ["admin"]}))
    assert admin_a["secret"].startswith("alk_") and admin_a["scopes"] == ["admin"] and admin_a["workspace_id"] == a
    gateway.wait_key(admin_a["secret"], accepted=True)
    with httpx.Client(
        base_url=gateway.base_url + "/admin", headers={"authorization": f"Bearer {admin_a['secret']}"}
    ) as c:
        # Its own workspace: create, list, get, patch, revoke.
        key = created(
            c.post("/keys", json={"name": "worker", "models": ["mock/*"], "expires_at": "2099-01-01T00:00:00Z"})
        )
        assert key["workspace_id"] == a and "key_hash" not in key
        listed = c.get("/keys").json()
        assert {k["id"] for k in listed} == {admin_a["id"], key["id"]} and all("secret" not in k for k in listed)
        assert c.get(f"/keys/{key['id']}").json()["name"] == "worker"
        patched = c.patch(f"/keys/{key['id']}", json={"models": ["mock/mock-1"], "policy": {"max_tokens": 5}}).json()
        assert patched["models"] == ["mock/mock-1"] and patched["policy"] == {"max_tokens": 5}
        assert c.patch(f"/keys/{key['id']}", json={"expires_at": "2000-01-01T00:00:00Z"}).status_code == 400
        assert [w["id"] for w in c.get("/workspaces").json()] == [a]
        # Workspace B is out of reach, whether named or addressed by id.
        other = c.get("/keys", params={"workspace_id": b})
        assert other.status_code == 403 and other.json()["error"]["code"] == "policy_denied"
        assert c.get(f"/keys/{key_b['id']}").status_code == 404
        assert c.delete(f"/keys/{key_b['id']}").status_code == 404
        assert c.get("/agents/b-agent").status_code == 404
        assert c.get(f"/workspaces/{b}").status_code == 403
        assert c.post("/workspaces", json={"id": unique("nope")}).status_code == 403
        revoked = c.post(f"/keys/{key['id']}/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert {k["id"] for k in c.get("/keys").json()} == {admin_a["id"]}
        assert key["id"] in {k["id"] for k in c.get("/keys", params={"include_revoked": "true"}).json()}
    # A key without the admin scope gets no admin API; it still calls models.
    gateway.wait_key(key_b["secret"], accepted=True)
    refused = httpx.get(gateway.base_url + "/admin/keys", headers={"authorization": f"Bearer {key_b['secret']}"})
    assert refused.status_code == 403 and "--scope admin" in refused.json()["error"]["message"]
    assert httpx.get(gateway.base_url + "/admin/keys").status_code == 401
    reply = sdk(gateway, key_b["secret"]).chat.completions.create(
        model="mock/mock-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Mock reply to: hi"


def test_provider_keys_are_listed_without_secrets(master: httpx.Client) -> None:
    ws = {"workspace_id": unique("byo")}
    secret = "sk-admin-" + secrets.token_hex(8)
    added = created(
        master.post("/provider-keys", params=ws, json={"provider": "openai", "name": "p", "secret": secret})
    )
    assert set(added) == {"id", "workspace_id", "provider", "name", "created_at", "revoked_at"}
    assert secret not in master.get("/provider-keys", params=ws).text
    unknown = master.post("/provider-keys", params=ws, json={"provider": "nope", "name": "p", "secret": "x"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "provider"
    gone = master.delete(f"/provider-keys/{added['id']}", params=ws)
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    assert master.get("/provider-keys", params=ws).json() == []


def test_openapi_document_is_generated_from_the_models(gateway: Gateway) -> None:
    document = httpx.get(gateway.base_url + "/admin/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    for path, method in [
        ("/admin/workspaces", "post"),
        ("/admin/departments", "get"),
        ("/admin/agents/{agent_id}", "patch"),
        ("/admin/keys/{key_id}", "delete"),
        ("/admin/keys/{key_id}/revoke", "post"),
        ("/admin/provider-keys", "post"),
    ]:
        assert method in paths[path], (path, method)
    body = paths["/admin/keys"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert {"name", "models", "scopes", "agent_id", "policy"} <= set(schema["properties"])
    assert schema["required"] == ["name"]
    provider_key_out = document["components"]["schemas"]["ProviderKeyOut"]
    assert "secret" not in provider_key_out["properties"] and "ciphertext" not in provider_key_out["properties"]


def test_a_policy_change_reaches_the_running_gateway(gateway: Gateway, master: httpx.Client) -> None:
    ws = unique("live")
    created(master.post("/workspaces", json={"id": ws}))
    key = created(master.post("/keys", params={"workspace_id": ws}, json={"name": "live"}))
    gateway.wait_key(key["secret"], accepted=True)
    client = sdk(gateway, key["secret"])
    client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "hi"}])
    master.patch(f"/workspaces/{ws}", json={"policy": {"deny_models": ["mock/*"]}})
    deadline = time.monotonic() + 5
    while True:
        try:
            client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "hi"}])
        except openai.PermissionDeniedError as exc:
            assert f"workspace:{ws}:deny_models" in exc.message
            break
        assert time.monotonic() < deadline, "the policy change did not reach the gateway"
        time.sleep(0.05)


def test_deleting_refuses_while_referenced_and_keeps_history(gateway: Gateway, master: httpx.Client) -> None:
    ws = unique("del")
    scoped = {"workspace_id": ws}
    created(master.post("/workspaces", json={"id": ws}))
    dep = created(master.post("/departments", params=scoped, json={"name": "Ops"}))
    created(master.post("/agents", params=scoped, json={"id": "bot", "department_id": dep["id"]}))
    key = created(master.post("/keys", params=scoped, json={"name": "bound", "agent_id": "bot"}))
    budget = created(
        master.post(
            "/budgets",
            params=scoped,
            json={"scope": "department", "scope_id": dep["id"], "period": "daily", "limit_usd": "5"},
        )
    )
    gateway.wait_key(key["secret"], accepted=True)
    reply = sdk(gateway, key["secret"]).chat.completions.with_raw_response.create(
        model="mock/mock-1", messages=[{"role": "user", "content": "hi"}]
    )
    request_id = reply.headers["alephant-request-id"]

    def refused(path: str, *names: str) -> None:
        answer = master.delete(path, params=scoped)
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "conflict" and "still referenced" in error["message"], error
        for name in names:
            assert name in error["message"], (name, error["message"])

    refused("/agents/bot", "1 live key", key["id"])
    refused(f"/departments/{dep['id']}", "1 agent (bot)", f"1 budget ({budget['id']})")
    refused(f"/workspaces/{ws}", "live key", "department", "agent", "budget")
    assert master.get("/agents/bot", params=scoped).status_code == 200  # nothing was cascaded

    assert master.post(f"/keys/{key['id']}/revoke", params=scoped).status_code == 200
    gone = master.delete("/agents/bot", params=scoped)
    assert gone.status_code == 200 and gone.json()["id"] == "bot"
    assert master.get("/agents/bot", params=scoped).status_code == 404
    assert master.delete("/agents/bot", params=scoped).status_code == 404
    assert master.delete(f"/budgets/{budget['id']}", params=scoped).status_code == 200
    assert master.delete(f"/departments/{dep['id']}", params=scoped).status_code == 200
    assert master.get(f"/departments/{dep['id']}", params=scoped).status_code == 404

    deleted = master.delete(f"/workspaces/{ws}")
    assert deleted.status_code == 200 and deleted.json()["id"] == ws
    assert master.get(f"/workspaces/{ws}").status_code == 404
    assert master.delete(f"/workspaces/{ws}").status_code == 404
    # The request log is history: the row keeps the workspace and agent it was made by.
    row = anyio.run(gateway.log_row, request_id)
    assert (row.workspace_id, row.agent_id) == (ws, "bot")


def test_the_default_workspace_and_others_admin_keys_cannot_delete(gateway: Gateway, master: httpx.Client) -> None:
    default = master.delete("/workspaces/default")
    assert default.status_code == 409 and "cannot be deleted" in default.json()["error"]["message"]
    ws = unique("own")
    created(master.post("/workspaces", json={"id": ws}))
    admin_key = created(master.post("/keys", params={"workspace_id": ws}, json={"name": "a", "scopes": ["admin"]}))
    gateway.wait_key(admin_key["secret"], accepted=True)
    headers = {"authorization": f"Bearer {admin_key['secret']}"}
    with httpx.Client(base_url=gateway.base_url + "/admin", headers=headers) as c:
        assert c.delete(f"/workspaces/{ws}").status_code == 403
        created(c.post("/agents", json={"id": "mine"}))
        assert c.delete("/agents/mine").status_code == 200
    assert master.delete("/workspaces/default").json()["error"]["code"] == "conflict"


def test_a_budget_without_time_zone_takes_its_workspace_s(master: httpx.Client) -> None:
    ws = unique("tokyo")
    created(master.post("/workspaces", json={"id": ws, "time_zone": "Asia/Tokyo"}))
    body = {"scope": "workspace", "period": "daily", "limit_usd": "1"}
    made = created(master.post("/budgets", params={"workspace_id": ws}, json=body))
    assert made["time_zone"] == "Asia/Tokyo"
    resets = master.get(f"/budgets/{made['id']}", params={"workspace_id": ws}).json()["current"]["resets_at"]
    assert datetime.fromisoformat(resets).astimezone(UTC).time() == dt_time(15, 0)  # midnight in Tokyo
    explicit = created(master.post("/budgets", params={"workspace_id": ws}, json={**body, "time_zone": "UTC"}))
    assert explicit["time_zone"] == "UTC"
    assert created(master.post("/budgets", params={"workspace_id": unique("none")}, json=body))["time_zone"] == "UTC"
