"""Bring-your-own provider keys: sealed at rest with the master key, used by their workspace's calls instead of
the environment's (a fake OpenAI upstream records the key it received), and re-sealed by a master key rotation.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import openai
import pytest
from sqlalchemy import text

from server.governance.crypto import SealError, SecretBox
from server.storage import Database
from server.storage.governance import GovernanceStore, provider_key_context
from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, ROOT, Gateway, running_gateway
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]
BYO_SECRET = "sk-byo-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def byo_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=BYO_SECRET) as fake:
        yield fake


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alephant.db'}"
        return
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        drop_postgres(url)


def cli(env: dict[str, str], *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result


def byo_gateway(
    tmp: Path, upstream: FakeOpenAI, database_url: str, master_key: str = MASTER_KEY
) -> contextlib.AbstractContextManager[Gateway]:
    # The "byo" provider's environment variable is never set: only a workspace's own key can reach it.
    tmp.mkdir(exist_ok=True)
    providers = {"byo": {"base_url": upstream.base_url, "api_key_env": "BYO_NOT_SET_KEY", "models": ["gpt-4o-mini"]}}
    return running_gateway(tmp, providers=providers, database_url=database_url, env={"ALEPHANT_MASTER_KEY": master_key})


async def chat(
    gateway: Gateway, key: str, path: str = "/v1/chat/completions", model: str = "byo/gpt-4o-mini"
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        return await client.post(
            path, headers={"authorization": f"Bearer {key}"}, json={"model": model, "messages": HELLO}
        )


async def stored_ciphertexts(database_url: str) -> list[str]:
    async with Database(database_url) as database, database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM provider_keys"))).all()
    return [str(row._mapping["ciphertext"]) for row in rows]


async def test_byo_key_reaches_the_upstream_and_survives_rotation(
    tmp_path: Path, byo_upstream: FakeOpenAI, database_url: str
) -> None:
    with byo_gateway(tmp_path / "one", byo_upstream, database_url) as gateway:
        own = gateway.create_key("own", "--workspace", "byo-team")
        other = gateway.create_key("other", "--workspace", "elsewhere")
        before = await chat(gateway, own["secret"])
        assert before.status_code == 503 and before.json()["error"]["code"] == "provider_not_configured"

        added = cli(
            gateway.env,
            *("provider-keys", "add", "--provider", "byo", "--name", "team key", "--workspace", "byo-team"),
            *("--secret-env", "BYO_SECRET_FOR_TEST", "--json"),
            BYO_SECRET_FOR_TEST=BYO_SECRET,
        )
        record = json.loads(added.stdout)[0]
        assert BYO_SECRET not in added.stdout and "ciphertext" not in record

        # Within the refresh interval, the workspace's calls carry its own key upstream.
        byo_upstream.clear()
        for _ in range(100):
            answer = await chat(gateway, own["secret"])
            if answer.status_code == 200:
                break
            await anyio.sleep(0.05)
        assert answer.status_code == 200, answer.text
        assert byo_upstream.last_request.headers["authorization"] == f"Bearer {BYO_SECRET}"
        assert answer.json()["choices"][0]["message"]["content"] == "fake reply to: hi"
        # Another workspace does not get it.
        assert (await chat(gateway, other["secret"])).status_code == 503
        # The passthrough uses it too.
        relayed = await chat(gateway, own["secret"], "/byo/v1/chat/completions", "gpt-4o-mini")
        assert (
            relayed.status_code == 200 and byo_upstream.last_request.headers["authorization"] == f"Bearer {BYO_SECRET}"
        )

        # At rest: no secret in the table, and no opening it without the master key.
        sealed = await stored_ciphertexts(database_url)
        assert len(sealed) == 1 and BYO_SECRET not in sealed[0] and sealed[0].startswith("v1.")
        async with Database(database_url) as database:
            stored = (await GovernanceStore(database).provider_keys("byo-team"))[0]
        with pytest.raises(SealError, match="another master key"):
            SecretBox("alk_master_some_other_key_0123456789abcdef").open(
                sealed[0], context=provider_key_context(stored)
            )
        assert SecretBox(MASTER_KEY).open(sealed[0], context=provider_key_context(stored)) == BYO_SECRET

        new_master = "alk_master_rotated_" + secrets.token_hex(16)
        rotated = cli(gateway.env, "master-key", "rotate", "--new-key-env", "NEW_MASTER", NEW_MASTER=new_master)
        assert "Re-encrypted 1 provider keys" in rotated.stdout and new_master not in rotated.stdout
        resealed = (await stored_ciphertexts(database_url))[0]
        assert resealed != sealed[0] and BYO_SECRET not in resealed
        with pytest.raises(SealError):
            SecretBox(MASTER_KEY).open(resealed, context=provider_key_context(stored))
        assert SecretBox(new_master).open(resealed, context=provider_key_context(stored)) == BYO_SECRET

    # A gateway started with the new master key uses the re-sealed key.
    with byo_gateway(tmp_path / "two", byo_upstream, database_url, new_master) as gateway:
        byo_upstream.clear()
        answer = await chat(gateway, own["secret"])
        assert answer.status_code == 200, answer.text
        assert byo_upstream.last_request.headers["authorization"] == f"Bearer {BYO_SECRET}"

        cli(gateway.env, "provider-keys", "revoke", record["id"], "--workspace", "byo-team")
        for _ in range(100):
            answer = await chat(gateway, own["secret"])
            if answer.status_code == 503:
                break
            await anyio.sleep(0.05)
        assert answer.status_code == 503


def test_a_ciphertext_does_not_open_on_another_row() -> None:
    box = SecretBox(MASTER_KEY)
    sealed = box.seal("sk-live-abc", context="pk_1|ws|openai")
    assert "sk-live-abc" not in sealed and box.open(sealed, context="pk_1|ws|openai") == "sk-live-abc"
    with pytest.raises(SealError, match="another row"):
        box.open(sealed, context="pk_2|ws|openai")
    assert box.seal("sk-live-abc", context="c") != box.seal("sk-live-abc", context="c")  # a fresh nonce each time
    assert "sk-" not in repr(box) and MASTER_KEY not in repr(box)


def test_openai_sdk_sees_the_gateway_errors_unchanged(tmp_path: Path, byo_upstream: FakeOpenAI) -> None:
    with byo_gateway(tmp_path, byo_upstream, f"sqlite:///{tmp_path / 'a.db'}") as gateway:
        client = openai.OpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="byo/gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
        assert caught.value.status_code == 503 and "BYO_NOT_SET_KEY" in caught.value.message


async def test_rotation_replaces_a_file_master_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_")}
    database_url = f"sqlite:///{tmp_path / 'alephant.db'}"
    env.update({"PYTHONPATH": str(ROOT), "ALEPHANT_DATA_DIR": str(tmp_path), "ALEPHANT_DATABASE_URL": database_url})
    (tmp_path / "alephant.yaml").write_text("{}\n")
    env["ALEPHANT_CONFIG"] = str(tmp_path / "alephant.yaml")
    cli(env, "provider-keys", "add", "--provider", "openai", "--name", "p", "--secret-env", "S", S="sk-file-1")
    old = (tmp_path / "master.key").read_text().strip()
    rotated = cli(env, "master-key", "rotate", "--generate")
    new = (tmp_path / "master.key").read_text().strip()
    assert new != old and new not in rotated.stdout and (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    async with Database(database_url) as database:
        stored = (await GovernanceStore(database).provider_keys())[0]
    assert SecretBox(new).open(stored.ciphertext, context=provider_key_context(stored)) == "sk-file-1"
