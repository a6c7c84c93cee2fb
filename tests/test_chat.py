"""Chat completions, models and embeddings through a real server, driven by the official openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, SDKFactory
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Hello there gateway"}]


async def test_mock_chat_completion_is_answered_priced_and_logged(gateway: Gateway, sdk: SDKFactory) -> None:
    raw = await sdk().chat.completions.with_raw_response.create(model="mock/mock-1", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock reply to: Hello there gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    # mock tokens: 3 words + 3 per message in; 6 words out. Price $1/MTok in, $2/MTok out.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 6)
    assert raw.headers["alephant-provider"] == "mock"
    assert raw.headers["alephant-model"] == "mock/mock-1"
    assert raw.headers["alephant-cost-usd"] == "0.000018000"
    request_id = raw.headers["alephant-request-id"]
    row = await gateway.log_row(request_id)
    assert (row.status, row.http_status, row.error_code) == ("ok", 200, None)
    assert (row.endpoint, row.model, row.provider, row.upstream_model) == (
        "chat",
        "mock/mock-1",
        "mock",
        "mock-1",
    )
    assert (row.prompt_tokens, row.completion_tokens) == (6, 6)
    assert row.cost_nano == 18_000 and row.price_source == "alephant catalog"
    assert (row.key_id, row.workspace_id) == ("master", "default")
    assert row.stream is False and row.latency_ms > 0 and row.ttfb_ms is not None


async def test_streaming_relays_chunks_and_hides_usage_not_asked_for(gateway: Gateway, sdk: SDKFactory) -> None:
    stream = await sdk().chat.completions.create(model="mock/mock-1", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Mock reply to: Hello there gateway"
    assert all(not c.choices or c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "the usage-only chunk the gateway requested must be stripped"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_streaming_with_usage_and_log_row(gateway: Gateway, sdk: SDKFactory) -> None:
    raw = await sdk().chat.completions.with_raw_response.create(
        model="fast", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in raw.parse()]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (6, 6)
    assert raw.headers["content-type"].startswith("text/event-stream")
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert row.stream is True and row.status == "ok"
    assert (row.model, row.provider, row.prompt_tokens, row.completion_tokens) == ("fast", "mock", 6, 6)
    assert row.cost_nano == 18_000
    assert row.ttfb_ms is not None and row.ttfb_ms <= row.latency_ms


async def test_fast_path_forwards_to_openai_compatible_upstream(
    gateway: Gateway, fake_upstream: FakeOpenAI, sdk: SDKFactory
) -> None:
    fake_upstream.clear()
    raw = await sdk().chat.completions.with_raw_response.create(
        model="fake/gpt-4o-mini", messages=HELLO, temperature=0.5
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake reply to: Hello there gateway"
    sent = fake_upstream.last_request
    assert sent.model == "gpt-4o-mini", "the provider prefix must be stripped upstream"
    assert sent.header("authorization") == f"Bearer {fake_upstream.api_key}", "the provider key, not the client's"
    assert MASTER_KEY not in str(sent.headers)
    assert sent.json["temperature"] == 0.5, "unknown-to-the-gateway parameters pass through"
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model, row.prompt_tokens, row.completion_tokens) == (
        "fake",
        "gpt-4o-mini",
        6,
        6,
    )
    assert row.cost_nano == 0 and row.price_source is None, "a custom provider has no catalog price"


async def test_fast_path_stream_requests_usage_upstream(
    gateway: Gateway, fake_upstream: FakeOpenAI, sdk: SDKFactory
) -> None:
    fake_upstream.clear()
    stream = await sdk().chat.completions.create(model="fake/gpt-4o-mini", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake reply to: Hello there gateway"
    )
    assert fake_upstream.last_request.json["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)


async def test_catalog_name_resolves_bare_model(gateway: Gateway, sdk: SDKFactory) -> None:
    raw = await sdk().chat.completions.with_raw_response.create(model="mock-1", messages=HELLO)
    assert raw.headers["alephant-model"] == "mock/mock-1"


async def test_models_list_and_retrieve(gateway: Gateway, sdk: SDKFactory) -> None:
    models = [m.id async for m in sdk().models.list()]
    assert {"mock/mock-1", "mock/mock-embed-1", "fake/gpt-4o-mini", "fast"} <= set(models)
    assert not any(m.startswith("openai/") for m in models), "providers without a key are not listed"
    model = await sdk().models.retrieve("mock/mock-1")
    assert model.owned_by == "mock"
    with pytest.raises(openai.NotFoundError):
        await sdk().models.retrieve("mock/nope")


async def test_embeddings_default_base64_and_float(gateway: Gateway, sdk: SDKFactory) -> None:
    result = await sdk().embeddings.create(model="mock/mock-embed-1", input=["one two", "three"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert result.usage.prompt_tokens == 3
    floats = await sdk().embeddings.create(model="mock/mock-embed-1", input="one two", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding)
    upstream = await sdk().embeddings.with_raw_response.create(model="fake/text-embedding-3-small", input="hello world")
    assert len(upstream.parse().data[0].embedding) == 8
    row = await gateway.log_row(upstream.headers["alephant-request-id"])
    assert (row.endpoint, row.prompt_tokens, row.provider) == ("embeddings", 2, "fake")


async def test_ai_alias_serves_the_same_api(gateway: Gateway, sdk: SDKFactory) -> None:
    ai = sdk(base_url=gateway.base_url + "/ai")
    completion = await ai.chat.completions.create(model="mock/mock-1", messages=HELLO)
    assert completion.choices[0].message.content == "Mock reply to: Hello there gateway"


async def test_health(gateway: Gateway, sdk: SDKFactory) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        assert (await http.get("/health/live")).json() == {"status": "ok"}
        ready = await http.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["store"] == ("postgresql" if gateway.store == "postgres" else "sqlite")


async def test_client_disconnect_mid_stream_is_logged(gateway: Gateway, sdk: SDKFactory) -> None:
    async with httpx.AsyncClient(base_url=gateway.api_url) as http:
        request_id = "req-disconnect-" + gateway.store
        body = {
            "model": "fake/fake-chunk-delay-0.2",
            "stream": True,
            "messages": [{"role": "user", "content": " ".join(["word"] * 30)}],
        }
        headers = {"authorization": f"Bearer {MASTER_KEY}", "alephant-request-id": request_id}
        async with http.stream("POST", "/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            received = 0
            async for _ in response.aiter_raw():
                received += 1
                if received >= 2:
                    break
    row = await gateway.log_row(request_id)
    assert row.status == "client_disconnected"
    assert 1 <= row.completion_tokens < 30, "tokens so far, not the whole answer"
