"""Virtual key lifecycle with the CLI against the running server's store: create, use, list, revoke, expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from server.storage import Database, hash_secret
from tests.conftest import Gateway, SDKFactory

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]


async def test_key_lifecycle(gateway: Gateway, sdk: SDKFactory) -> None:
    created = gateway.create_key("lifecycle", "--workspace", "team-a")
    secret = created["secret"]
    assert secret.startswith("alk_") and created["prefix"] == secret[:12]
    raw = await sdk(secret).chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.key_id, row.workspace_id) == (created["id"], "team-a")

    listed = json.loads(gateway.cli("keys", "list", "--json", "--workspace", "team-a").stdout)
    assert [k["id"] for k in listed] == [created["id"]]
    assert "secret" not in listed[0] and "key_hash" not in listed[0]
    assert secret not in gateway.cli("keys", "list").stdout

    gateway.cli("keys", "revoke", created["prefix"])
    gateway.wait_key(secret, accepted=False)
    with pytest.raises(openai.AuthenticationError) as caught:
        await sdk(secret).chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert caught.value.code == "invalid_api_key"
    assert json.loads(gateway.cli("keys", "list", "--json", "--workspace", "team-a").stdout) == []
    await assert_rejected_logged(gateway, caught.value.response)


async def assert_rejected_logged(gateway: Gateway, response: httpx.Response) -> None:
    row = await gateway.log_row(response.headers["alephant-request-id"])
    assert (row.http_status, row.error_code, row.key_id) == (401, "invalid_api_key", None)


async def test_secret_is_stored_only_as_a_hash(gateway: Gateway, sdk: SDKFactory) -> None:
    created = gateway.create_key("hashed")
    from sqlalchemy import text

    async with Database(gateway.database_url) as database, database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]})).all()
    assert rows and created["secret"] not in repr(rows)
    assert hash_secret(created["secret"]) in repr(rows)


async def test_missing_and_invalid_keys_are_401(gateway: Gateway, sdk: SDKFactory) -> None:
    async with httpx.AsyncClient(base_url=gateway.api_url) as http:  # the SDK refuses to send no key at all
        missing = await http.post("/chat/completions", json={"model": "mock/mock-1", "messages": HELLO})
    assert missing.status_code == 401 and "Missing API key" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    await assert_rejected_logged(gateway, missing)
    with pytest.raises(openai.AuthenticationError) as invalid:
        await sdk("alk_not_a_real_key").chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert "Invalid or revoked" in invalid.value.message
    assert "alk_not_a_real_key" not in invalid.value.message


async def test_expired_key_is_401(gateway: Gateway, sdk: SDKFactory) -> None:
    created = gateway.create_key("short-lived", "--expires", "1m")
    async with Database(gateway.database_url) as database:
        from sqlalchemy import text

        async with database.engine.begin() as conn:
            past = datetime.now(tz=UTC) - timedelta(minutes=1)
            await conn.execute(
                text("UPDATE api_keys SET expires_at = :t WHERE id = :id"), {"t": past, "id": created["id"]}
            )
            await conn.execute(text("UPDATE state_version SET version = version + 1 WHERE name = 'keys'"))
    gateway.wait_key(created["secret"], accepted=False)
    with pytest.raises(openai.AuthenticationError) as caught:
        await sdk(created["secret"]).chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert "expired" in caught.value.message


async def test_model_allowance_is_enforced_with_403(gateway: Gateway, sdk: SDKFactory) -> None:
    created = gateway.create_key("narrow", "--models", "mock/*")
    client = sdk(created["secret"])
    completion = await client.chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert completion.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.chat.completions.create(model="fake/gpt-4o-mini", messages=HELLO)
    assert caught.value.code == "policy_denied" and "fake/gpt-4o-mini" in caught.value.message
    row = await gateway.log_row(caught.value.response.headers["alephant-request-id"])
    assert (row.http_status, row.error_code, row.key_id) == (403, "policy_denied", created["id"])
    models = [m.id async for m in client.models.list()]
    assert models and all(m.startswith("mock/") or m == "fast" for m in models)


def test_cli_rejects_bad_input(gateway: Gateway) -> None:
    past = gateway.cli("keys", "create", "--name", "x", "--expires", "2001-01-01", check=False)
    assert past.returncode != 0 and "in the past" in past.stderr and "Traceback" not in past.stderr
    garbage = gateway.cli("keys", "create", "--name", "x", "--expires", "soon", check=False)
    assert garbage.returncode != 0 and "not a duration" in garbage.stderr + garbage.stdout
    unknown = gateway.cli("keys", "revoke", "key_doesnotexist", check=False)
    assert unknown.returncode == 1 and "no active key" in unknown.stderr
