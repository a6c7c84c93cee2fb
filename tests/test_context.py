"""Agent context headers: read case-insensitively, validated, echoed, and attached to the log row."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway, SDKFactory

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]


async def test_context_headers_are_echoed_and_logged(gateway: Gateway, sdk: SDKFactory) -> None:
    client = sdk(
        default_headers={
            "ALEPHANT-AGENT-ID": "support-bot",
            "alephant-run-id": "run-42",
            "Alephant-Session-Id": "sess:7",
            "Alephant-Request-Id": f"my-req-{gateway.store}-1",
            "Alephant-Property-Customer": "acme",
            "alephant-property-tier": "gold",
        },
    )
    raw = await client.chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    assert raw.headers["alephant-request-id"] == f"my-req-{gateway.store}-1"
    assert raw.headers["alephant-agent-id"] == "support-bot"
    assert raw.headers["alephant-run-id"] == "run-42"
    assert raw.headers["alephant-session-id"] == "sess:7"
    row = await gateway.log_row(f"my-req-{gateway.store}-1")
    assert (row.agent_id, row.run_id, row.session_id) == ("support-bot", "run-42", "sess:7")
    assert row.properties == {"customer": "acme", "tier": "gold"}


async def test_request_id_is_generated_when_absent(gateway: Gateway, sdk: SDKFactory) -> None:
    first = await sdk().chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    second = await sdk().chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    ids = {first.headers["alephant-request-id"], second.headers["alephant-request-id"]}
    assert len(ids) == 2 and all(i.startswith("req_") for i in ids)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Alephant-Agent-Id", "has spaces"),
        ("Alephant-Run-Id", "x" * 129),
        ("Alephant-Session-Id", "semi;colon"),
        ("Alephant-Request-Id", "a/b"),
        ("Alephant-Property-Bad.Name", "v"),
        ("Alephant-Property-Note", "x" * 257),
    ],
)
async def test_bad_context_header_is_400_naming_it(gateway: Gateway, header: str, value: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.api_url) as http:
        response = await http.post(
            "/chat/completions",
            json={"model": "mock/mock-1", "messages": HELLO},
            headers={"authorization": f"Bearer {MASTER_KEY}", header: value},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_header" and header.lower() in error["message"].lower()
    row = await gateway.log_row(response.headers["alephant-request-id"])
    assert (row.http_status, row.error_code) == (400, "invalid_header")
