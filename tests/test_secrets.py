"""Secrets stay secret: with every exporter on, no credential reaches a stored row, an archived body, a span,
a webhook payload, /metrics, the server log or any file the gateway wrote.

The secrets: a virtual key (sent as ``Authorization``), a client credential in ``x-api-key`` (also pasted into
a message, which the mock echoes back), and the provider key the gateway holds in its environment and sends
upstream.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import openai

from tests.conftest import FAKE_KEY_ENV, running_gateway
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.webhook_receiver import WebhookReceiver

PROVIDER_KEY = "sk-provider-upstream-secret-6c1f0e2d9b"
CLIENT_KEY = "xk-client-header-secret-93a7b5e1"


def test_no_secret_is_stored_exported_or_logged(tmp_path: Path) -> None:
    with (
        FakeOpenAI(api_key=PROVIDER_KEY) as upstream,
        OtlpReceiver() as spans,
        WebhookReceiver() as sink,
    ):
        config = {
            "otel": {"endpoint": spans.root_url},
            "archive": {"workspaces": ["*"]},
            "sinks": [{"url": sink.url, "batch_size": 5, "flush_interval": 0.1}],
        }
        providers = {"fake": {"base_url": upstream.base_url, "api_key_env": FAKE_KEY_ENV, "models": ["gpt-4o-mini"]}}
        env = {FAKE_KEY_ENV: PROVIDER_KEY, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        with running_gateway(tmp_path, providers=providers, config=config, env=env) as gateway:
            virtual = gateway.create_key("app")["secret"]
            headers = {"x-api-key": CLIENT_KEY, "Alephant-Agent-Id": "agent-1"}
            client = openai.OpenAI(base_url=gateway.api_url, api_key=virtual, default_headers=headers, max_retries=0)
            for model in ("fake/gpt-4o-mini", "mock/mock-1"):
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
                for _ in client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"my key is {CLIENT_KEY}"}], stream=True
                ):
                    pass
            bad = httpx.post(
                gateway.api_url + "/chat/completions",
                json={"model": "mock/mock-1", "messages": []},
                headers={"authorization": f"Bearer {virtual}", "x-api-key": CLIENT_KEY},
            )
            assert bad.status_code == 400
            wrong = httpx.post(gateway.api_url + "/chat/completions", headers={"authorization": f"Bearer {virtual}x"})
            assert wrong.status_code == 401
            metrics = httpx.get(gateway.base_url + "/metrics").text
            assert upstream.requests, "the provider key was used upstream"
        # Stopped: every queue is flushed (rows, bodies, spans, sink batches).
        deadline = time.monotonic() + 5
        while len(sink.events) < 6 or len(spans.spans) < 6:
            assert time.monotonic() < deadline, "exports did not arrive"
            time.sleep(0.05)
        exported = {"spans": b"".join(spans.requests), "sink": b"".join(sink.raw), "metrics": metrics.encode()}

    secrets = {"virtual key": virtual, "client key": CLIENT_KEY, "provider key": PROVIDER_KEY}
    with sqlite3.connect(tmp_path / "alephant.db") as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))
    assert "request_log" in tables and dump.count("agent-1") >= 4
    exported["database rows"] = dump.encode()
    archived = list((tmp_path / "data" / "archive").rglob("*.json"))
    assert len(archived) == 5  # four answers and the bad request; the refused key has no workspace to archive in
    for path in tmp_path.rglob("*"):  # every file the gateway wrote: database, WAL, spools, archive, its log
        if path.is_file():
            exported[str(path.relative_to(tmp_path))] = path.read_bytes()
    for where, data in exported.items():
        for name, secret in secrets.items():
            assert secret.encode() not in data, f"the {name} leaked into {where}"
    archived_text = b"".join(path.read_bytes() for path in archived)
    assert b"[redacted]" in archived_text and b"my key is [redacted]" in archived_text
