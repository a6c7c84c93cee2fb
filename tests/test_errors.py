"""Every error the issue names, through the real server, in OpenAI's error format, each logged exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, Gateway, SDKFactory

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hi"}]


async def post(
    gateway: Gateway, path: str, content: bytes | None = None, json: Any = None, **headers: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.api_url, timeout=30) as http:
        return await http.post(path, content=content, json=json, headers={**AUTH, **headers})


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


async def assert_logged(gateway: Gateway, response: httpx.Response, code: str) -> None:
    row = await gateway.log_row(response.headers["alephant-request-id"])
    assert (row.status, row.http_status, row.error_code) == ("error", response.status_code, code)


async def test_invalid_json_says_where(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", content=b'{"model": "mock/mock-1",\n "messages": [}')
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "line 2" in error["message"] and "column" in error["message"]
    await assert_logged(gateway, response, "invalid_json")


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": HELLO}, "model", "Missing required field 'model'"),
        ({"model": 42, "messages": HELLO}, "model", "got number"),
        ({"model": "mock/mock-1"}, "messages", "Missing required field 'messages'"),
        ({"model": "mock/mock-1", "messages": "hi"}, "messages", "got string"),
        ({"model": "mock/mock-1", "messages": []}, "messages", "empty array"),
        ({"model": "mock/mock-1", "messages": [{"content": "x"}]}, "messages[0]", "string 'role'"),
        ({"model": "mock/mock-1", "messages": HELLO, "stream": "yes"}, "stream", "boolean"),
    ],
)
async def test_bad_fields_are_named(gateway: Gateway, body: dict[str, Any], param: str, words: str) -> None:
    response = await post(gateway, "/chat/completions", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == param and words in error["message"], error
    await assert_logged(gateway, response, error["code"])


async def test_non_object_body(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", json=[1, 2])
    assert response.status_code == 400 and "JSON object" in error_of(response)["message"]


async def test_unknown_model_is_404_with_a_hint(gateway: Gateway, sdk: SDKFactory) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk().chat.completions.create(model="nosuchprovider/model-x", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"
    assert "GET /v1/models" in caught.value.message
    await assert_logged(gateway, caught.value.response, "model_not_found")


async def test_body_over_limit_is_413(gateway: Gateway) -> None:
    big = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "x" * 70_000}]}
    response = await post(gateway, "/chat/completions", json=big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    await assert_logged(gateway, response, "request_too_large")


async def test_a_chunked_body_is_read_whole_and_held_to_the_limit(gateway: Gateway) -> None:
    # No Content-Length: the gateway counts the body as its pieces arrive (several ASGI messages).
    async def pieces(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 4_096):
            yield data[start : start + 4_096]

    async with httpx.AsyncClient(base_url=gateway.api_url, timeout=30) as http:
        fits = orjson.dumps({"model": "mock/mock-1", "messages": [{"role": "user", "content": "y" * 20_000}]})
        answered = await http.post("/chat/completions", content=pieces(fits), headers=AUTH)
        assert answered.status_code == 200, answered.text
        assert answered.json()["usage"]["prompt_tokens"] > 0
        big = orjson.dumps({"model": "mock/mock-1", "messages": [{"role": "user", "content": "x" * 70_000}]})
        refused = await http.post("/chat/completions", content=pieces(big), headers=AUTH)
    assert refused.status_code == 413
    assert error_of(refused)["code"] == "request_too_large"
    assert "exceeds the limit" in error_of(refused)["message"]


async def test_upstream_unreachable_is_502_naming_the_provider(gateway: Gateway, sdk: SDKFactory) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk().chat.completions.create(model="down/any", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert "'down'" in caught.value.message
    await assert_logged(gateway, caught.value.response, "upstream_unavailable")


async def test_upstream_5xx_is_502_with_the_provider_message(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", json={"model": "fake/fake-status-503", "messages": HELLO})
    assert response.status_code == 502
    error = error_of(response)
    assert "'fake'" in error["message"] and "overloaded" in error["message"]
    await assert_logged(gateway, response, "upstream_error")


async def test_upstream_timeout_is_504(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", json={"model": "fake/fake-delay-5", "messages": HELLO})
    assert response.status_code == 504
    assert "'fake'" in error_of(response)["message"]
    await assert_logged(gateway, response, "upstream_timeout")


async def test_upstream_4xx_keeps_status_message_and_retry_after(gateway: Gateway, sdk: SDKFactory) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk().chat.completions.create(model="fake/fake-status-429", messages=HELLO)  # type: ignore[arg-type]
    assert "Rate limit reached" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "1"
    await assert_logged(gateway, caught.value.response, "rate_limit_exceeded")


async def test_provider_without_key_is_explained(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": HELLO})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "provider_not_configured" and "OPENAI_API_KEY" in error["message"]


async def test_mock_error_injection(gateway: Gateway) -> None:
    response = await post(gateway, "/chat/completions", json={"model": "mock/mock-error-500", "messages": HELLO})
    assert response.status_code == 502 and "'mock'" in error_of(response)["message"]


async def test_unknown_route_and_method_are_json(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        missing = await http.get("/v1/nothing-here")
        assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
        wrong = await http.get("/v1/chat/completions")
        assert wrong.status_code == 405 and "not allowed" in error_of(wrong)["message"]
