"""Azure OpenAI: the fake's fidelity (official ``AzureOpenAI`` SDK), the adapter's request/response translation
(golden), and calls through a real gateway with the ``openai`` SDK as the client.

The fake is trusted only because the official SDK parses it; the adapter is trusted only because its requests
are what the SDK itself sends (URL, ``api-version``, ``api-key``) and the gateway relays Azure's answers,
including its content-filter additions, to an unmodified OpenAI client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from providers.azure import DEFAULT_API_VERSION, AzureAdapter
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.azure_upstream import FakeAzureOpenAI

RESOURCE = "https://contoso.openai.azure.com"
KEY = "azure-key-123"
HELLO = [{"role": "user", "content": "hello there world"}]
REPLY = "fake reply to: hello there world"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAzureOpenAI]:
    with FakeAzureOpenAI() as server:
        yield server


@pytest.fixture
def azure_sdk(fake: FakeAzureOpenAI) -> Iterator[openai.AzureOpenAI]:
    fake.clear()
    with openai.AzureOpenAI(
        azure_endpoint=fake.base_url, api_key=fake.api_key, api_version=DEFAULT_API_VERSION, max_retries=0
    ) as client:
        yield client


# ---------------------------------------------------------------------------------------------- a. fidelity


def test_sdk_chat_hits_the_deployment_url_with_api_key(fake: FakeAzureOpenAI, azure_sdk: openai.AzureOpenAI) -> None:
    completion = azure_sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini-2024-07-18", "Azure reports the deployment's model version"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        6,
        6,
    )
    extra = completion.model_extra or {}
    assert extra["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {
        "filtered": False,
        "detected": False,
    }
    assert (completion.choices[0].model_extra or {})["content_filter_results"]["violence"]["severity"] == "safe"
    sent = fake.last_request
    assert sent.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent.query == {"api-version": DEFAULT_API_VERSION}
    assert sent.header("api-key") == fake.api_key and sent.header("authorization") is None


def test_sdk_stream_starts_with_the_prompt_filter_chunk(azure_sdk: openai.AzureOpenAI) -> None:
    chunks = list(
        azure_sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    first = chunks[0]
    assert first.choices == [] and first.id == "" and "prompt_filter_results" in (first.model_extra or {})
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.total_tokens == 12


def test_sdk_parallel_tool_calls_plain_and_streamed(azure_sdk: openai.AzureOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "please call all tools"}]
    completion = azure_sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"input": "please call all tools"}  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    stream = azure_sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS, stream=True)
    fragments: dict[int, list[str]] = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            fragments.setdefault(delta.index, []).append(delta.function.arguments or "")  # type: ignore[union-attr]
    assert sorted(fragments) == [0, 1] and len(fragments[0]) > 2
    assert json.loads("".join(fragments[1])) == {"input": "please call all tools"}


def test_sdk_embeddings_default_base64(fake: FakeAzureOpenAI, azure_sdk: openai.AzureOpenAI) -> None:
    result = azure_sdk.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert result.usage.prompt_tokens == 3
    assert fake.last_request.path == "/openai/deployments/text-embedding-3-small/embeddings"
    assert fake.last_request.json["encoding_format"] == "base64"


def test_sdk_errors_raise_typed_exceptions(fake: FakeAzureOpenAI, azure_sdk: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        azure_sdk.chat.completions.create(model="no-such-deployment", messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.code == "DeploymentNotFound"
    with pytest.raises(openai.RateLimitError) as limited:
        azure_sdk.chat.completions.create(model="fake-status-429", messages=HELLO)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after-ms"] == "850"
    with pytest.raises(openai.BadRequestError) as filtered:
        azure_sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "please filter prompt"}],
        )
    assert filtered.value.code == "content_filter"
    wrong = openai.AzureOpenAI(
        azure_endpoint=fake.base_url, api_key="wrong", api_version=DEFAULT_API_VERSION, max_retries=0
    )
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    no_version = httpx.post(
        f"{fake.base_url}/openai/deployments/gpt-4o-mini/chat/completions",
        headers={"api-key": fake.api_key},
        json={"messages": HELLO},
    )
    assert (no_version.status_code, no_version.json()["error"]["message"]) == (404, "Resource not found")


def test_sdk_v1_api_with_bearer(fake: FakeAzureOpenAI) -> None:
    fake.clear()
    with openai.OpenAI(base_url=f"{fake.base_url}/openai/v1/", api_key=fake.api_key, max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == REPLY
    assert fake.last_request.path == "/openai/v1/chat/completions"
    assert fake.last_request.header("authorization") == f"Bearer {fake.api_key}"


# ---------------------------------------------------------------------------------------------- b. translation


def _call(
    body: dict[str, Any],
    *,
    model: str = "gpt-4o-mini",
    endpoint: str = "chat",
    options: dict[str, str] | None = None,
    base_url: str = RESOURCE,
    client_wants_usage: bool = False,
) -> UpstreamCall:
    spec = ProviderSpec(
        id="azure", adapter="azure", base_url=base_url, api_key=KEY, options=options or {"api_version": "2024-10-21"}
    )
    return UpstreamCall(
        endpoint=endpoint,  # type: ignore[arg-type]
        provider=spec,
        model=model,
        body=body,
        raw=orjson.dumps(body),
        stream=bool(body.get("stream")),
        client_wants_usage=client_wants_usage,
    )


def test_golden_chat_request_rewrites_model_and_uses_api_key() -> None:
    body = {"model": "azure/gpt-4o-mini", "messages": HELLO, "temperature": 0.2, "tools": TOOLS}
    request = AzureAdapter().build_request(_call(body))
    assert request.method == "POST"
    assert request.url == f"{RESOURCE}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    assert request.headers == {"content-type": "application/json", "api-key": KEY}
    assert orjson.loads(request.body) == {**body, "model": "gpt-4o-mini"}
    assert request.provider_id == "azure" and request.stream is False


def test_golden_fast_path_forwards_the_clients_bytes() -> None:
    raw = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    call = _call(orjson.loads(raw))
    call.raw = raw
    assert AzureAdapter().build_request(call).body is raw


def test_golden_stream_asks_for_usage_and_embeddings_url() -> None:
    adapter = AzureAdapter()
    request = adapter.build_request(_call({"model": "x", "messages": HELLO, "stream": True}))
    assert orjson.loads(request.body)["stream_options"] == {"include_usage": True}
    assert request.headers["accept"] == "text/event-stream" and request.stream
    embed = adapter.build_request(
        _call({"model": "x", "input": "hi"}, model="text-embedding-3-small", endpoint="embeddings")
    )
    assert embed.url == f"{RESOURCE}/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"


def test_golden_v1_api_bearer_auth_and_forgiving_endpoint() -> None:
    adapter = AzureAdapter()
    v1 = adapter.build_request(_call({"model": "x", "messages": HELLO}, options={"api_version": "v1"}))
    assert v1.url == f"{RESOURCE}/openai/v1/chat/completions"
    assert orjson.loads(v1.body)["model"] == "gpt-4o-mini", "the v1 API takes the deployment in the body"
    bearer = adapter.build_request(_call({"model": "x", "messages": HELLO}, options={"auth": "bearer"}))
    assert bearer.headers["authorization"] == f"Bearer {KEY}" and "api-key" not in bearer.headers
    assert bearer.url.endswith(f"?api-version={DEFAULT_API_VERSION}"), "the default api-version"
    pasted = adapter.build_request(
        _call({"model": "x", "messages": HELLO}, model="my deployment", base_url=RESOURCE + "/openai/")
    )
    assert pasted.url == f"{RESOURCE}/openai/deployments/my%20deployment/chat/completions?api-version=2024-10-21"


AZURE_BODY = (
    b'{"choices":[{"content_filter_results":{"violence":{"filtered":true,"severity":"medium"}},'
    b'"finish_reason":"content_filter","index":0,"logprobs":null,"message":{"content":"fake reply",'
    b'"refusal":null,"role":"assistant"}}],"created":1,"id":"chatcmpl-1","model":"gpt-4o-mini-2024-07-18",'
    b'"object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],'
    b'"usage":{"completion_tokens":2,"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":4},'
    b'"total_tokens":11}}'
)


def test_parse_response_relays_azure_body_untouched() -> None:
    parsed = AzureAdapter().parse_response(_call({}), UpstreamResponse(status=200, headers={}, body=AZURE_BODY))
    assert parsed.body == AZURE_BODY
    assert parsed.usage == Usage(prompt_tokens=9, completion_tokens=2, cached_tokens=4)


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events) + b"data: [DONE]\r\n\r\n"


PROMPT_FILTER = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": []}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"content_filter_results": {}, "delta": delta, "finish_reason": finish, "index": 0}
    return {"choices": [choice], "id": "c1", "model": "m", "object": "chat.completion.chunk", "usage": None}


USAGE_CHUNK = {"choices": [], "id": "c1", "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
STREAM = _sse(
    PROMPT_FILTER,
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({}, "content_filter"),
    USAGE_CHUNK,
)


@pytest.mark.parametrize("size", [1, 3, 7, 64, len(STREAM)])
@pytest.mark.parametrize("wants_usage", [False, True])
def test_stream_translation_at_awkward_splits(size: int, wants_usage: bool) -> None:
    translator = AzureAdapter().stream(_call({"stream": True}, client_wants_usage=wants_usage))
    out: list[bytes] = []
    for at in range(0, len(STREAM), size):
        out += translator.feed(STREAM[at : at + size])
    out += translator.finish()
    events = [e.removeprefix(b"data: ").strip() for e in out]
    assert events[-1] == b"[DONE]"
    parsed = [orjson.loads(e) for e in events[:-1]]
    assert parsed[0]["prompt_filter_results"] == [], "Azure's prompt filter chunk passes through"
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in parsed if p["choices"]) == "Hello"
    assert [p["choices"][0]["finish_reason"] for p in parsed if p["choices"]][-1] == "content_filter"
    assert translator.usage == Usage(prompt_tokens=5, completion_tokens=2)
    assert any("usage" in p and p["usage"] for p in parsed) is wants_usage
    if not wants_usage:
        assert all("usage" not in p for p in parsed), "usage: null is hidden from a client that did not ask"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error":{"code":"DeploymentNotFound","message":"The API deployment does not exist."}}',
            "The API deployment",
        ),
        (b'{"statusCode": 401, "message": "Unauthorized. Access token is missing."}', "Unauthorized. Access token"),
        (b"upstream connect error", "upstream connect error"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert AzureAdapter().error_message(UpstreamResponse(status=400, headers={}, body=body)).startswith(message)


# ---------------------------------------------------------------------------------------------- c. gateway


@pytest.fixture(scope="module")
def gateway(fake: FakeAzureOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    providers = {
        "azure": {
            "base_url": fake.base_url,
            "models": ["gpt-4o-mini", "gpt-4o"],
            "embedding_models": ["text-embedding-3-small"],
        }
    }
    with running_gateway(
        tmp_path_factory.mktemp("azure-gateway"),
        providers=providers,
        env={"AZURE_OPENAI_API_KEY": fake.api_key},
        config={"upstream": {"timeout": 2}},
    ) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway, fake: FakeAzureOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    fake.clear()
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


@pytest.mark.anyio
async def test_gateway_plain_chat_usage_and_priced_log_row(
    gateway: Gateway, fake: FakeAzureOpenAI, client: openai.AsyncOpenAI
) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="azure/gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        6,
        6,
    )
    assert "prompt_filter_results" in (completion.model_extra or {}), "Azure's additions reach the client"
    sent = fake.last_request
    assert sent.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent.query["api-version"] == DEFAULT_API_VERSION
    assert sent.header("api-key") == fake.api_key and sent.header("authorization") is None
    assert sent.json["model"] == "gpt-4o-mini"
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model, row.prompt_tokens, row.completion_tokens) == (
        "azure",
        "gpt-4o-mini",
        6,
        6,
    )
    assert row.cost_nano > 0 and row.price_source is not None and "genai-prices" in row.price_source


@pytest.mark.anyio
async def test_gateway_stream_with_and_without_usage(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="azure/gpt-4o-mini",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in raw.parse()]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 3 and "".join(texts) == REPLY
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (6, 6)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.stream, row.prompt_tokens, row.completion_tokens) == (True, 6, 6) and row.cost_nano > 0

    stream = await client.chat.completions.create(model="azure/gpt-4o-mini", messages=HELLO, stream=True)  # type: ignore[arg-type]
    plain = [c async for c in stream]
    assert all(c.usage is None for c in plain), "no usage chunk for a client that did not ask"
    assert "prompt_filter_results" in (plain[0].model_extra or {})


@pytest.mark.anyio
async def test_gateway_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris? call tool"}]
    first = await client.chat.completions.create(model="azure/gpt-4o", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny 22C"},
    ]
    final = await client.chat.completions.create(model="azure/gpt-4o", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "fake reply to tool result: sunny 22C"
    assert final.choices[0].finish_reason == "stop"


@pytest.mark.anyio
async def test_gateway_streamed_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris? call tool"}]
    stream = await client.chat.completions.create(model="azure/gpt-4o", messages=messages, tools=TOOLS, stream=True)
    call_id, name, fragments, finish = "", "", [], None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call_id = delta.id or call_id
            name = (delta.function.name if delta.function else None) or name
            if delta.function and delta.function.arguments:
                fragments.append(delta.function.arguments)
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and name == "get_weather" and call_id
    assert len(fragments) > 1, "argument deltas are relayed as they arrive"
    assert json.loads("".join(fragments)) == {"input": "weather in Paris? call tool"}
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": "".join(fragments)}}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": "rainy 12C"},
    ]
    final = await client.chat.completions.create(model="azure/gpt-4o", messages=messages, tools=TOOLS, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in final if c.choices])
    assert text == "fake reply to tool result: rainy 12C"


@pytest.mark.anyio
async def test_gateway_finish_reasons_length_and_content_filter(client: openai.AsyncOpenAI) -> None:
    short = await client.chat.completions.create(model="azure/gpt-4o-mini", messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == ("fake reply", "length")
    filtered = await client.chat.completions.create(
        model="azure/gpt-4o-mini", messages=[{"role": "user", "content": "please trigger filter"}]
    )
    assert filtered.choices[0].finish_reason == "content_filter"
    results = (filtered.choices[0].model_extra or {})["content_filter_results"]
    assert results["violence"] == {"filtered": True, "severity": "medium"}
    stream = await client.chat.completions.create(
        model="azure/gpt-4o-mini", messages=[{"role": "user", "content": "please trigger filter"}], stream=True
    )
    reasons = [c.choices[0].finish_reason async for c in stream if c.choices and c.choices[0].finish_reason]
    assert reasons == ["content_filter"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("deployment", "status", "code"),
    [
        ("fake-status-400", 400, "BadRequest"),
        ("fake-status-401", 401, "401"),
        ("no-such-deployment", 404, "DeploymentNotFound"),
        ("fake-status-429", 429, "429"),
        ("fake-status-500", 502, "upstream_error"),
    ],
)
async def test_gateway_error_mapping(
    gateway: Gateway, client: openai.AsyncOpenAI, deployment: str, status: int, code: str | None
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=f"azure/{deployment}", messages=HELLO)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == status
    assert error.code == code
    if status == 429:
        assert error.response.headers["retry-after"] == "1"
        assert error.response.headers["retry-after-ms"] == "850"
        assert "exceeded token rate limit" in error.message
    if status == 502:
        assert "Provider 'azure' failed with HTTP 500" in error.message
    row = await gateway.log_row(error.response.headers["alephant-request-id"])
    assert (row.status, row.http_status, row.provider) == ("error", status, "azure")


@pytest.mark.anyio
async def test_gateway_prompt_filter_and_timeout(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as filtered:
        await client.chat.completions.create(
            model="azure/gpt-4o-mini", messages=[{"role": "user", "content": "please filter prompt"}]
        )
    assert filtered.value.code == "content_filter"
    assert "content management policy" in filtered.value.message
    with pytest.raises(openai.APIStatusError) as slow:
        await client.chat.completions.create(model="azure/fake-delay-5", messages=HELLO)  # type: ignore[arg-type]
    assert slow.value.status_code == 504


@pytest.mark.anyio
async def test_gateway_embeddings_priced(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model="azure/text-embedding-3-small", input=["one two", "three"]
    )
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [8, 8] and result.usage.prompt_tokens == 3
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.endpoint, row.provider, row.prompt_tokens) == ("embeddings", "azure", 3) and row.cost_nano > 0


def test_catalog_row() -> None:
    from providers.catalog import Catalog

    catalog = Catalog.load(env={"AZURE_OPENAI_API_KEY": "k"})
    spec = catalog.provider("azure")
    assert spec is not None and spec.adapter == "azure" and spec.options["api_version"] == DEFAULT_API_VERSION
    assert spec.api_key == "k" and not spec.available, "no resource endpoint yet: not usable"
    configured = Catalog.load(
        env={"AZURE_OPENAI_API_KEY": "k"}, custom={"azure": {"base_url": "https://r.openai.azure.com"}}
    ).provider("azure")
    assert configured is not None and configured.available
    info = catalog.model_info("azure", "gpt-4o-mini")
    assert info is not None and info.context_window == 128000 and "tools" in info.capabilities
    assert Path(__file__).parent.parent.joinpath("providers/data/azure.yaml").exists()
