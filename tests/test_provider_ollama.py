"""Ollama (native API): the fake's fidelity (official ``ollama`` SDK), the adapter's translation both ways
(golden request bodies, response and NDJSON stream translation), and calls through a real gateway with the
``openai`` SDK as the client.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
import openai
import orjson
import pytest

from providers.catalog import Catalog
from providers.ollama import OllamaAdapter, chat_body
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.ollama_upstream import MIDWAY_ERROR, FakeOllama

HELLO = [{"role": "user", "content": "hello there world"}]
REPLY = "fake reply to: hello there world"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
            "strict": True,
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def sdk(fake: FakeOllama) -> ollama.Client:
    fake.clear()
    return ollama.Client(host=fake.base_url)


# ---------------------------------------------------------------------------------------------- a. fidelity


def test_sdk_chat(fake: FakeOllama, sdk: ollama.Client) -> None:
    response = sdk.chat(model="llama3.2", messages=HELLO, options={"temperature": 0})
    assert isinstance(response, ollama.ChatResponse)
    assert response.message.content == REPLY and response.done and response.done_reason == "stop"
    assert (response.prompt_eval_count, response.eval_count) == (6, 6)
    assert fake.last_request.path == "/api/chat" and fake.last_request.json["stream"] is False


def test_sdk_stream_and_thinking(sdk: ollama.Client) -> None:
    parts = list(sdk.chat(model="deepseek-r1", messages=HELLO, stream=True, think=True))
    assert all(isinstance(p, ollama.ChatResponse) for p in parts)
    assert "".join(p.message.thinking or "" for p in parts) == "thinking about: hello there world"
    assert "".join(p.message.content or "" for p in parts) == REPLY
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done_reason == "stop"
    assert parts[-1].eval_count == 6 + 5


def test_sdk_parallel_tools_and_tool_result(sdk: ollama.Client) -> None:
    response = sdk.chat(model="qwen2.5", messages=[{"role": "user", "content": "call all tools"}], tools=TOOLS)
    calls = response.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].function.arguments == {"input": "call all tools"}
    streamed = list(
        sdk.chat(model="qwen2.5", messages=[{"role": "user", "content": "call tool"}], tools=TOOLS, stream=True)
    )
    assert [len(p.message.tool_calls or []) for p in streamed] == [1, 0], "the call arrives whole in one chunk"
    answer = sdk.chat(
        model="qwen2.5",
        messages=[
            {"role": "user", "content": "call tool"},
            {"role": "assistant", "content": "", "tool_calls": [calls[0]]},
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
    )
    assert answer.message.content == "fake reply to tool get_weather: sunny"


def test_sdk_embed_and_options(fake: FakeOllama, sdk: ollama.Client) -> None:
    result = sdk.embed(model="nomic-embed-text", input=["one two", "three"])
    assert isinstance(result, ollama.EmbedResponse)
    assert [len(v) for v in result.embeddings] == [8, 8] and result.prompt_eval_count == 3
    short = sdk.chat(model="llama3.2", messages=HELLO, options={"num_predict": 2}, format="json")
    assert (short.message.content, short.done_reason) == ('{"reply":"fake reply"}', "length")


def test_sdk_errors(fake: FakeOllama, sdk: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        sdk.chat(model="not-pulled", messages=HELLO)
    assert missing.value.status_code == 404
    assert missing.value.error == 'model "not-pulled" not found, try pulling it first'
    with pytest.raises(ollama.ResponseError) as busy:
        sdk.chat(model="fake-status-503", messages=HELLO)
    assert busy.value.status_code == 503 and "server busy" in busy.value.error
    with FakeOllama(api_key="cloud-key") as cloud:
        with pytest.raises(ollama.ResponseError) as denied:
            ollama.Client(host=cloud.base_url).chat(model="llama3.2", messages=HELLO)
        assert (denied.value.status_code, denied.value.error) == (401, "unauthorized")
        keyed = ollama.Client(host=cloud.base_url, headers={"Authorization": "Bearer cloud-key"})
        assert keyed.chat(model="llama3.2", messages=HELLO).message.content == REPLY
    assert httpx.get(f"{fake.base_url}/api/nope").text == "404 page not found"


# ---------------------------------------------------------------------------------------------- b. translation


def _call(
    body: dict[str, Any],
    *,
    model: str = "llama3.2",
    endpoint: str = "chat",
    options: dict[str, str] | None = None,
    api_key: str | None = None,
    client_wants_usage: bool = False,
) -> UpstreamCall:
    spec = ProviderSpec(
        id="ollama",
        adapter="ollama",
        base_url="http://gpu-box:11434",
        api_key=api_key,
        requires_key=False,
        options=options or {},
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


CONVERSATION: dict[str, Any] = {
    "model": "ollama/llama3.2",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "use metric"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "and the weather?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"input": "Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
    ],
    "tools": TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "max_completion_tokens": 100,
    "temperature": 0.2,
    "top_p": 0.9,
    "seed": 7,
    "stop": "END",
    "response_format": {"type": "json_object"},
    "reasoning_effort": "minimal",
    "logprobs": True,
    "user": "u-1",
}


def test_golden_chat_request() -> None:
    request = OllamaAdapter().build_request(
        _call({**CONVERSATION, "stream": True}, options={"num_ctx": "32768", "keep_alive": "30m"})
    )
    assert (request.method, request.url, request.stream) == ("POST", "http://gpu-box:11434/api/chat", True)
    assert request.headers == {"content-type": "application/json"}, "a local server takes no key"
    assert orjson.loads(request.body) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "system", "content": "use metric"},
            {"role": "user", "content": "what is this?\nand the weather?", "images": [PIXEL]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"input": "Paris"}}},
                    {"function": {"name": "get_time", "arguments": {}}},
                ],
            },
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
            {"role": "tool", "content": "noon", "tool_name": "get_time"},
        ],
        "stream": True,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": TOOLS[0]["function"]["parameters"],
                },
            },
            TOOLS[1],
        ],
        "format": "json",
        "think": "low",
        "keep_alive": "30m",
        "options": {"num_predict": 100, "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"], "num_ctx": 32768},
    }


def test_golden_minimal_request_variants() -> None:
    minimal = chat_body(_call({"model": "x", "messages": HELLO}))
    assert minimal == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hello there world"}],
        "stream": False,
    }
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    varied = chat_body(
        _call(
            {
                "messages": HELLO,
                "tools": TOOLS,
                "tool_choice": "none",
                "max_tokens": 5,
                "stop": ["a", "b"],
                "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
                "reasoning_effort": "none",
            }
        )
    )
    assert "tools" not in varied, "tool_choice none: the model is not offered tools"
    assert varied["format"] == schema and varied["think"] is False
    assert varied["options"] == {"num_predict": 5, "stop": ["a", "b"]}
    named = chat_body(
        _call(
            {"messages": HELLO, "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
        )
    )
    assert named["tools"] == [TOOLS[1]], "a named tool_choice narrows the tools to that function"
    keyed = OllamaAdapter().build_request(_call({"messages": HELLO}, api_key="ok-1"))
    assert keyed.headers["authorization"] == "Bearer ok-1"


def test_golden_embeddings_request() -> None:
    request = OllamaAdapter().build_request(
        _call({"model": "x", "input": ["a", "b"], "dimensions": 4, "encoding_format": "float"}, endpoint="embeddings")
    )
    assert request.url == "http://gpu-box:11434/api/embed"
    assert orjson.loads(request.body) == {"model": "llama3.2", "input": ["a", "b"], "dimensions": 4}


def _response(data: dict[str, Any]) -> UpstreamResponse:
    return UpstreamResponse(status=200, headers={}, body=orjson.dumps(data))


def test_parse_tool_call_response() -> None:
    data = {
        "model": "qwen2.5",
        "message": {
            "role": "assistant",
            "content": "",
            "thinking": "hmm",
            "tool_calls": [
                {"function": {"index": 0, "name": "get_weather", "arguments": {"input": "Paris"}}},
                {"id": "call_ollama", "function": {"index": 1, "name": "get_time", "arguments": {}}},
            ],
        },
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 120,
        "eval_count": 30,
    }
    parsed = OllamaAdapter().parse_response(_call({}, model="qwen2.5"), _response(data))
    assert parsed.usage == Usage(prompt_tokens=120, completion_tokens=30)
    body = orjson.loads(parsed.body)
    assert body["id"].startswith("chatcmpl-") and body["model"] == "qwen2.5"
    assert body["usage"]["total_tokens"] == 150
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None and choice["message"]["reasoning_content"] == "hmm"
    first, second = choice["message"]["tool_calls"]
    assert first["id"].startswith("call_") and len(first["id"]) == 29
    assert first["function"] == {"name": "get_weather", "arguments": '{"input":"Paris"}'}
    assert second["id"] == "call_ollama", "Ollama's own id when it sends one"


def test_parse_length_and_embeddings() -> None:
    data = {"message": {"role": "assistant", "content": "fake reply"}, "done_reason": "length", "eval_count": 2}
    body = orjson.loads(OllamaAdapter().parse_response(_call({}), _response(data)).body)
    assert (body["choices"][0]["message"]["content"], body["choices"][0]["finish_reason"]) == ("fake reply", "length")
    embed = {"model": "nomic-embed-text", "embeddings": [[0.5, -0.25]], "prompt_eval_count": 4}
    floats = OllamaAdapter().parse_response(_call({"input": "a"}, endpoint="embeddings"), _response(embed))
    assert floats.usage == Usage(prompt_tokens=4)
    assert orjson.loads(floats.body)["data"][0]["embedding"] == [0.5, -0.25]
    b64 = OllamaAdapter().parse_response(
        _call({"input": "a", "encoding_format": "base64"}, endpoint="embeddings"), _response(embed)
    )
    packed = base64.b64decode(orjson.loads(b64.body)["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == (0.5, -0.25)


def _ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


STREAM = _ndjson(
    {"model": "m", "message": {"role": "assistant", "content": "", "thinking": "hm"}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": "lo ✓"}, "done": False},
    {
        "model": "m",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "a", "arguments": {"x": 1}}},
                {"function": {"name": "b", "arguments": {}}},
            ],
        },
        "done": False,
    },
    {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}
    | {"prompt_eval_count": 9, "eval_count": 4},
)


def _translate(stream: bytes, size: int, *, wants_usage: bool) -> tuple[list[Any], Any]:
    translator = OllamaAdapter().stream(_call({"stream": True}, client_wants_usage=wants_usage))
    out: list[bytes] = []
    for at in range(0, len(stream), size):
        out += translator.feed(stream[at : at + size])
    out += translator.finish()
    assert all(event.startswith(b"data: ") and event.endswith(b"\n\n") for event in out)
    events = [event[6:].strip() for event in out]
    return [e if e == b"[DONE]" else orjson.loads(e) for e in events], translator.usage


@pytest.mark.parametrize("size", [1, 2, 5, 13, 100, len(STREAM)])
@pytest.mark.parametrize("wants_usage", [False, True])
def test_stream_translation_at_awkward_splits(size: int, wants_usage: bool) -> None:
    events, usage = _translate(STREAM, size, wants_usage=wants_usage)
    assert events[-1] == b"[DONE]"
    chunks = events[:-1]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "hm"}
    assert "".join(d.get("content", "") for d in deltas) == "Hello ✓"
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "a", '{"x":1}'),
        (1, "b", "{}"),
    ], "each call is relayed whole, with its arguments, as soon as its line arrives"
    assert all(c["id"].startswith("call_") for c in calls)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert usage == Usage(prompt_tokens=9, completion_tokens=4)
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert len(usage_chunks) == (1 if wants_usage else 0)
    if wants_usage:
        assert usage_chunks[0]["usage"]["total_tokens"] == 13
    assert len({c["id"] for c in chunks}) == 1


def test_stream_is_incremental_and_reports_errors() -> None:
    translator = OllamaAdapter().stream(_call({"stream": True}))
    first = translator.feed(_ndjson({"message": {"role": "assistant", "content": "Hi"}, "done": False})[:-1])
    assert first == [], "a line is translated once its newline arrives"
    assert len(translator.feed(b"\n")) == 2, "role chunk, then the content"
    failed = translator.feed(b'{"error":"an error was encountered while running the model"}\n')
    assert orjson.loads(failed[0][6:])["error"]["message"] == "an error was encountered while running the model"
    assert translator.feed(_ndjson({"message": {"content": "late"}, "done": True})) == [], "nothing after an error"
    assert translator.finish() == []
    cut = OllamaAdapter().stream(_call({"stream": True}))
    cut.feed(_ndjson({"message": {"role": "assistant", "content": "Hi"}, "done": False}))
    ended = cut.finish()
    assert b"ended the stream before its final message" in ended[-1] and b"[DONE]" not in b"".join(ended)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error":"model \\"x\\" not found, try pulling it first"}', 'model "x" not found, try pulling it first'),
        (b'{"error":{"message":"unauthorized","type":"auth"}}', "unauthorized"),
        (b"404 page not found", "404 page not found"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert OllamaAdapter().error_message(UpstreamResponse(status=404, headers={}, body=body)) == message


def test_catalog_row() -> None:
    catalog = Catalog.load(env={})
    spec = catalog.provider("ollama")
    assert spec is not None and spec.adapter == "ollama" and not spec.requires_key
    assert not spec.available, "a local server is enabled by listing it in the configuration"
    enabled = Catalog.load(env={}, custom={"ollama": {"base_url": "http://127.0.0.1:11434"}}).provider("ollama")
    assert enabled is not None and enabled.available
    assert spec.base_url == "http://127.0.0.1:11434"
    assert {"llama3.2", "llama3.1", "qwen2.5", "mistral", "gemma3", "phi4", "deepseek-r1"} <= set(spec.models)
    assert "nomic-embed-text" in spec.embedding_models
    assert catalog.prices["ollama/llama3.2"] == {"input_mtok": 0, "output_mtok": 0}


# ---------------------------------------------------------------------------------------------- c. gateway


@pytest.fixture(scope="module")
def gateway(fake: FakeOllama, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("ollama-gateway"),
        providers={"ollama": {"base_url": fake.base_url}},
        config={"upstream": {"timeout": 2}},
    ) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway, fake: FakeOllama) -> AsyncIterator[openai.AsyncOpenAI]:
    fake.clear()
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


@pytest.mark.anyio
async def test_gateway_plain_chat_and_log_row(gateway: Gateway, fake: FakeOllama, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="ollama/llama3.2",
        messages=HELLO,  # type: ignore[arg-type]
        temperature=0.1,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop" and completion.model == "llama3.2"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        6,
        6,
    )
    sent = fake.last_request
    assert (sent.path, sent.json["model"], sent.json["stream"]) == ("/api/chat", "llama3.2", False)
    assert sent.json["options"] == {"temperature": 0.1}
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model, row.prompt_tokens, row.completion_tokens) == ("ollama", "llama3.2", 6, 6)
    assert (row.cost_nano, row.price_source) == (0, "alephant catalog"), "local models are priced at zero"


@pytest.mark.anyio
async def test_gateway_stream_with_and_without_usage(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="ollama/llama3.2",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in raw.parse()]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 6 and "".join(texts) == REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.stream, row.status, row.prompt_tokens, row.completion_tokens) == (True, "ok", 6, 6)
    stream = await client.chat.completions.create(model="ollama/llama3.2", messages=HELLO, stream=True)  # type: ignore[arg-type]
    plain = [c async for c in stream]
    assert all(c.choices for c in plain) and plain[-1].choices[0].finish_reason == "stop"


@pytest.mark.anyio
async def test_gateway_tool_round_trip(fake: FakeOllama, client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris? call tool"}]
    first = await client.chat.completions.create(model="ollama/qwen2.5", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"input": "weather in Paris? call tool"}  # type: ignore[union-attr]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny 22C"},
    ]
    final = await client.chat.completions.create(model="ollama/qwen2.5", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "fake reply to tool get_weather: sunny 22C"
    assert final.choices[0].finish_reason == "stop"
    sent = fake.last_request.json["messages"]
    assert sent[1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"input": "weather in Paris? call tool"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "sunny 22C", "tool_name": "get_weather"}


@pytest.mark.anyio
async def test_gateway_streamed_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    """Ollama sends each call whole, so its arguments arrive in the call's first chunk (see providers/ollama.py)."""
    messages: list[Any] = [{"role": "user", "content": "call all tools"}]
    stream = await client.chat.completions.create(model="ollama/qwen2.5", messages=messages, tools=TOOLS, stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.id and delta.function and delta.function.name, "each call arrives complete"
            calls[delta.index] = {"id": delta.id, "name": delta.function.name, "args": delta.function.arguments or ""}
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["args"]) == {"input": "call all tools"}
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
                for c in calls.values()
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rainy"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    final = await client.chat.completions.create(model="ollama/qwen2.5", messages=messages, tools=TOOLS, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in final if c.choices])
    assert text == "fake reply to tool get_time: noon"


@pytest.mark.anyio
async def test_gateway_length_reasoning_and_midway_error(client: openai.AsyncOpenAI) -> None:
    short = await client.chat.completions.create(model="ollama/llama3.2", messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == ("fake reply", "length")
    thought = await client.chat.completions.create(
        model="ollama/deepseek-r1",
        messages=HELLO,  # type: ignore[arg-type]
        reasoning_effort="high",
    )
    assert (thought.choices[0].message.model_extra or {})["reasoning_content"] == "thinking about: hello there world"
    stream = await client.chat.completions.create(
        model="ollama/llama3.2", messages=[{"role": "user", "content": "please fail midway"}], stream=True
    )
    with pytest.raises(openai.APIError) as failed:
        [c async for c in stream]
    assert MIDWAY_ERROR in failed.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("fake-status-400", 400, "invalid request (injected by FakeOllama)"),
        ("fake-status-401", 401, "unauthorized (injected by FakeOllama)"),
        ("not-pulled", 404, 'model "not-pulled" not found, try pulling it first'),
        ("fake-status-429", 429, "too many requests (injected by FakeOllama)"),
        ("fake-status-500", 502, "llama runner process has terminated"),
    ],
)
async def test_gateway_error_mapping(
    gateway: Gateway, client: openai.AsyncOpenAI, model: str, status: int, message: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=f"ollama/{model}", messages=HELLO)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == status and message in error.message
    if status == 429:
        assert error.response.headers["retry-after"] == "1"
    if status == 502:
        assert "Provider 'ollama' failed with HTTP 500" in error.message
    row = await gateway.log_row(error.response.headers["alephant-request-id"])
    assert (row.status, row.http_status, row.provider) == ("error", status, "ollama")


@pytest.mark.anyio
async def test_gateway_timeout(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as slow:
        await client.chat.completions.create(model="ollama/fake-delay-5", messages=HELLO)  # type: ignore[arg-type]
    assert slow.value.status_code == 504


@pytest.mark.anyio
async def test_gateway_embeddings(gateway: Gateway, fake: FakeOllama, client: openai.AsyncOpenAI) -> None:
    raw = await client.embeddings.with_raw_response.create(model="ollama/nomic-embed-text", input=["one two", "three"])
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [8, 8] and result.usage.prompt_tokens == 3
    assert fake.last_request.path == "/api/embed"
    floats = await client.embeddings.create(model="ollama/nomic-embed-text", input="one two", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.endpoint, row.provider, row.prompt_tokens, row.cost_nano) == ("embeddings", "ollama", 3, 0)
