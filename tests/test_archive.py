"""Body archival: opted-in workspaces' bodies in a local directory (the default) or S3 (moto in server mode)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from server.storage import LogRow
from server.telemetry.archive import object_key
from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, Gateway, free_port, running_gateway

pytestmark = pytest.mark.anyio

CLIENT_SECRET = "sk-client-side-secret-0123456789"
LONG = "word " * 600  # ~3 KB: its streamed answer is longer than the 1 KiB cap below
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def chat(gateway: Gateway, key: str, content: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        gateway.api_url + "/chat/completions",
        json={"model": "mock/mock-1", "messages": [{"role": "user", "content": content}], **extra},
        headers={"authorization": f"Bearer {key}", "x-api-key": CLIENT_SECRET, "x-trace-note": "kept"},
        timeout=10,
    )


def wait_file(path: Path, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def read_body(gateway: Gateway, key: str, request_id: str, timeout: float = 5) -> dict[str, Any]:
    """``GET /v1/logs/{id}/body``, retried while the archive's writer has not written it yet."""
    deadline = time.monotonic() + timeout
    while True:
        reply = httpx.get(f"{gateway.api_url}/logs/{request_id}/body", headers={"authorization": f"Bearer {key}"})
        if reply.status_code == 200:
            document: dict[str, Any] = reply.json()
            return document
        assert reply.json()["error"]["code"] == "body_not_found" and time.monotonic() < deadline, reply.text
        time.sleep(0.05)


def refusal(gateway: Gateway, key: str, request_id: str) -> tuple[int, str]:
    reply = httpx.get(f"{gateway.api_url}/logs/{request_id}/body", headers={"authorization": f"Bearer {key}"})
    return reply.status_code, reply.json()["error"]["code"]


def check_plain(document: dict[str, Any], row: LogRow) -> None:
    assert document["request_id"] == row.request_id and document["workspace_id"] == row.workspace_id
    request, response = document["request"], document["response"]
    assert request["headers"]["authorization"] == "[redacted]"
    assert request["headers"]["x-api-key"] == "[redacted]"
    assert request["headers"]["x-trace-note"] == "kept"
    assert request["body"]["messages"] == [{"role": "user", "content": "archive me"}]
    assert response["status"] == 200 and response["truncated"] is False
    assert response["body"]["choices"][0]["message"]["content"] == "Mock reply to: archive me"


async def test_local_directory_is_the_default(tmp_path: Path) -> None:
    config = {"archive": {"workspaces": ["default"], "max_body_bytes": 1024}}
    with running_gateway(tmp_path, config=config) as gateway:
        outsider = gateway.create_key("outsider", "--workspace", "other")
        plain = chat(gateway, MASTER_KEY, "archive me")
        streamed = chat(gateway, MASTER_KEY, LONG, stream=True)
        failed = chat(gateway, MASTER_KEY, "archive me", model="mock/mock-error-503")
        skipped = chat(gateway, outsider["secret"], "not me")
        rows = {
            name: await gateway.log_row(reply.headers["alephant-request-id"])
            for name, reply in {"plain": plain, "streamed": streamed, "failed": failed, "skipped": skipped}.items()
        }
        # Read back through the API, within the caller's workspace only.
        served = read_body(gateway, MASTER_KEY, rows["plain"].request_id)
        check_plain(served, rows["plain"])
        for key, request_id, code in (
            (outsider["secret"], rows["plain"].request_id, "request_not_found"),  # another workspace's request
            (outsider["secret"], rows["skipped"].request_id, "body_not_archived"),  # its own, not archived
            (MASTER_KEY, "req_nobody", "request_not_found"),
        ):
            assert refusal(gateway, key, request_id) == (404, code)
    root = tmp_path / "data" / "archive"
    row = rows["plain"]
    assert row.body_ref == object_key(row) == f"default/{row.created_at:%Y/%m/%d}/{row.request_id}.json"
    check_plain(wait_file(root / row.body_ref), row)

    assert rows["streamed"].body_ref is not None
    stream = wait_file(root / rows["streamed"].body_ref)["response"]
    assert stream["truncated"] is True and len(stream["body"].encode()) == 1024
    assert stream["body"].startswith("data: ")  # the SSE bytes relayed to the client

    assert rows["failed"].body_ref is not None
    error = wait_file(root / rows["failed"].body_ref)["response"]
    assert error["status"] == 502 and error["error"]["code"] == rows["failed"].error_code

    assert rows["skipped"].body_ref is None  # workspace "other" did not opt in
    assert not (root / "other").exists()
    assert not list(root.rglob(".partial-*"))


@pytest.fixture
def s3() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_s3_compatible_storage(tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="bodies")
    database_url = fresh_postgres_url()
    config = {"archive": {"workspaces": ["*"], "s3_bucket": "bodies", "s3_endpoint_url": s3, "prefix": "gw/"}}
    try:
        with running_gateway(tmp_path, config=config, env=AWS, database_url=database_url) as gateway:
            outsider = gateway.create_key("elsewhere", "--workspace", "other")
            plain = chat(gateway, MASTER_KEY, "archive me")
            other = chat(gateway, outsider["secret"], "archive me")
            rows = [await gateway.log_row(reply.headers["alephant-request-id"]) for reply in (plain, other)]
            check_plain(read_body(gateway, outsider["secret"], rows[1].request_id), rows[1])  # read back from S3
        # The gateway stopped: shutdown wrote everything queued.
        for row in rows:
            assert row.body_ref == object_key(row, "gw/")
            document = json.loads(client.get_object(Bucket="bodies", Key=row.body_ref)["Body"].read())
            check_plain(document, row)
        assert rows[1].body_ref is not None and rows[1].body_ref.startswith("gw/other/")
        listed = client.list_objects_v2(Bucket="bodies")["Contents"]
        assert sorted(item["Key"] for item in listed) == sorted(row.body_ref for row in rows if row.body_ref)
    finally:
        drop_postgres(database_url)
