"""The Cohere adapter: SDK fidelity of the fake, golden request bodies, response/stream translation, and the
whole path through a real gateway driven by the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cohere
import openai
import orjson
import pytest
from cohere.v2.types.v2chat_stream_response import (
    ContentDeltaV2ChatStreamResponse,
    MessageEndV2ChatStreamResponse,
    ToolCallDeltaV2ChatStreamResponse,
    ToolCallStartV2ChatStreamResponse,
)

from providers.cohere import CohereAdapter, CohereStreamTranslator, finish_reason, usage_of
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.cohere_upstream import Answer, FakeCohere, answer_for, stream_events

HELLO = [{"role": "user", "content": "Hello there gateway"}]
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
SPEC = ProviderSpec(id="cohere", adapter="cohere", base_url="https://api.cohere.com/v2", api_key="co-key")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCohere]:
    with FakeCohere() as server:
        yield server


# ---------------------------------------------------------------- a. the fake, seen by the official SDK


# The SDK's own models use a pydantic attribute deprecated in pydantic 2; not ours to fix.
_SDK_WARNINGS = pytest.mark.filterwarnings("ignore:The `__fields__` attribute is deprecated")


@pytest.fixture
def co(fake: FakeCohere) -> Iterator[cohere.ClientV2]:
    client = cohere.ClientV2(api_key=fake.api_key, base_url=fake.root_url, max_retries=0)
    yield client
    client._client_wrapper.httpx_client.httpx_client.close()


@_SDK_WARNINGS
def test_sdk_chat(co: cohere.ClientV2, fake: FakeCohere) -> None:
    response = co.chat(model="command-a-03-2025", messages=HELLO)
    assert isinstance(response, cohere.V2ChatResponse)
    assert response.message.content is not None
    assert response.message.content[0].type == "text"
    assert response.message.content[0].text == "fake reply to: Hello there gateway"
    assert response.finish_reason == "COMPLETE"
    assert response.usage is not None and response.usage.tokens is not None and response.usage.billed_units
    assert (response.usage.tokens.input_tokens, response.usage.tokens.output_tokens) == (6, 6)
    assert response.usage.billed_units.input_tokens == 3
    assert fake.last_request.path == "/v2/chat"
    assert fake.last_request.header("authorization") == f"Bearer {fake.api_key}"


@_SDK_WARNINGS
def test_sdk_chat_stream_events_are_typed(co: cohere.ClientV2) -> None:
    events = list(co.chat_stream(model="command-a-03-2025", messages=HELLO))
    kinds = [event.type for event in events]
    assert kinds == ["message-start", "content-start", *["content-delta"] * 6, "content-end", "message-end"]
    deltas = [e for e in events if isinstance(e, ContentDeltaV2ChatStreamResponse)]
    text = "".join(
        e.delta.message.content.text for e in deltas if e.delta and e.delta.message and e.delta.message.content
    )
    assert text == "fake reply to: Hello there gateway"
    end = events[-1]
    assert isinstance(end, MessageEndV2ChatStreamResponse) and end.delta is not None
    assert end.delta.finish_reason == "COMPLETE" and end.delta.usage is not None


@_SDK_WARNINGS
def test_sdk_parallel_tools_and_tool_results(co: cohere.ClientV2) -> None:
    ask = [{"role": "user", "content": "call tool in parallel for Paris"}]
    first = co.chat(model="command-a-03-2025", messages=ask, tools=TOOLS)
    calls = first.message.tool_calls or []
    assert first.finish_reason == "TOOL_CALL" and first.message.tool_plan == "I will call get_weather, get_time."
    assert [c.function.name for c in calls if c.function] == ["get_weather", "get_time"]
    assert calls[0].function and json.loads(calls[0].function.arguments or "") == {"input": ask[0]["content"]}
    history: list[Any] = [
        *ask,
        {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": [{"type": "text", "text": "noon"}]},
    ]
    final = co.chat(model="command-a-03-2025", messages=history, tools=TOOLS)
    assert final.message.content and final.message.content[0].text == "fake answer from tools: sunny | noon"
    streamed = list(co.chat_stream(model="command-a-03-2025", messages=ask, tools=TOOLS))
    starts = [e for e in streamed if isinstance(e, ToolCallStartV2ChatStreamResponse)]
    fragments = [e for e in streamed if isinstance(e, ToolCallDeltaV2ChatStreamResponse)]
    assert len(starts) == 2 and len(fragments) > 2


@_SDK_WARNINGS
def test_sdk_embed(co: cohere.ClientV2) -> None:
    response = co.embed(
        model="embed-v4.0", texts=["one two", "three"], input_type="search_document", embedding_types=["float"]
    )
    assert isinstance(response, cohere.EmbedByTypeResponse)
    assert response.embeddings.float_ is not None and [len(v) for v in response.embeddings.float_] == [8, 8]
    assert response.meta and response.meta.billed_units and response.meta.billed_units.input_tokens == 3


@_SDK_WARNINGS
def test_sdk_errors_raise_the_sdk_exceptions(co: cohere.ClientV2, fake: FakeCohere) -> None:
    with pytest.raises(cohere.TooManyRequestsError) as limited:
        co.chat(model="fake-status-429", messages=HELLO)
    assert limited.value.status_code == 429 and limited.value.headers and limited.value.headers["retry-after"] == "1"
    assert "per minute request limit" in limited.value.body["message"]
    with pytest.raises(cohere.NotFoundError) as missing:
        co.chat(model="command-nope", messages=HELLO)
    assert missing.value.body["message"].startswith("model 'command-nope' not found")
    with pytest.raises(cohere.BadRequestError):
        co.chat(model="command-a-03-2025", messages=HELLO, p=1.0)
    bad_key = cohere.ClientV2(api_key="wrong", base_url=fake.root_url, max_retries=0)
    with pytest.raises(cohere.UnauthorizedError) as unauthorized:
        bad_key.chat(model="command-a-03-2025", messages=HELLO)
    bad_key._client_wrapper.httpx_client.httpx_client.close()
    assert unauthorized.value.body == {"id": unauthorized.value.body["id"], "message": "invalid api token"}


# ---------------------------------------------------------------- b. golden requests


def _call(
    body: dict[str, Any], *, endpoint: str = "chat", stream: bool = False, model: str = "command-a-03-2025"
) -> UpstreamCall:
    return UpstreamCall(
        endpoint=endpoint,  # type: ignore[arg-type]
        provider=SPEC,
        model=model,
        body=body,
        raw=orjson.dumps(body),
        stream=stream,
        client_wants_usage=False,
    )


def test_golden_chat_request() -> None:
    body = {
        "model": "cohere/command-a-03-2025",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "...", "format": "wav"}},
                ],
                "name": "ada",
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"input":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": [{"type": "text", "text": "It is sunny."}]},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": TOOLS,
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_completion_tokens": 100,
        "max_tokens": 5,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": "END",
        "seed": 7,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.3,
        "response_format": {"type": "json_object"},
        "user": "someone",
        "logprobs": True,
        "stream_options": {"include_usage": True},
    }
    request = CohereAdapter().build_request(_call(body, stream=True))
    assert (request.method, request.url, request.stream) == ("POST", "https://api.cohere.com/v2/chat", True)
    assert request.headers == {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "authorization": "Bearer co-key",
    }
    assert orjson.loads(request.body) == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"input":"x"}'},
                    }
                ],
                "tool_plan": "Let me look.",
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": "It is sunny."},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": TOOLS[0]["function"]["parameters"],
                },
            },
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": "REQUIRED",
        "max_tokens": 100,
        "temperature": 0.2,
        "seed": 7,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.3,
        "p": 0.5,
        "stop_sequences": ["END"],
        "response_format": {"type": "json_object"},
        "stream": True,
    }


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ({"tool_choice": "auto"}, {"tools": "both"}),
        ({"tool_choice": "none"}, {"tools": "both", "tool_choice": "NONE"}),
        ({"tool_choice": "required"}, {"tools": "both", "tool_choice": "REQUIRED"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            {"tools": "get_time", "tool_choice": "REQUIRED"},
        ),
    ],
)
def test_golden_tool_choice(canonical: dict[str, Any], expected: dict[str, Any]) -> None:
    body = orjson.loads(CohereAdapter().build_request(_call({"messages": HELLO, "tools": TOOLS, **canonical})).body)
    names = [t["function"]["name"] for t in body["tools"]]
    assert names == (["get_weather", "get_time"] if expected["tools"] == "both" else [expected["tools"]])
    assert body.get("tool_choice") == expected.get("tool_choice")


def test_golden_small_mappings() -> None:
    adapter = CohereAdapter()

    def sent(**extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(adapter.build_request(_call({"messages": HELLO, **extra})).body)
        return body

    assert sent() == {"model": "command-a-03-2025", "messages": HELLO}
    assert sent(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert sent(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})[
        "response_format"
    ] == {"type": "json_object", "json_schema": schema}
    assert "response_format" not in sent(response_format={"type": "text"})
    assert sent(reasoning_effort="none")["thinking"] == {"type": "disabled"}
    assert "thinking" not in sent(reasoning_effort="high")
    assert (sent(top_p=1)["p"], sent(top_p=0)["p"], sent(top_p=0.5)["p"]) == (0.99, 0.01, 0.5)
    strict = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "strict": True}}]
    assert sent(tools=strict)["strict_tools"] is True
    assert "tool_choice" not in sent(tool_choice="required"), "no tools: nothing to require"
    with pytest.raises(ValueError, match="one answer per call"):
        adapter.build_request(_call({"messages": HELLO, "n": 2}))
    with pytest.raises(ValueError, match="not among the tools"):
        adapter.build_request(_call({"messages": HELLO, "tools": TOOLS, "tool_choice": {"function": {"name": "x"}}}))


def test_golden_embed_request() -> None:
    call = _call({"model": "cohere/embed-v4.0", "input": "hello", "dimensions": 256}, endpoint="embeddings")
    request = CohereAdapter().build_request(call)
    assert request.url == "https://api.cohere.com/v2/embed" and request.headers["accept"] == "application/json"
    assert orjson.loads(request.body) == {
        "model": "command-a-03-2025",
        "texts": ["hello"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 256,
    }
    with pytest.raises(ValueError, match="text only"):
        CohereAdapter().build_request(_call({"input": [[1, 2, 3]]}, endpoint="embeddings"))


# ---------------------------------------------------------------- b. response and stream translation


@pytest.mark.parametrize(
    ("cohere_reason", "canonical"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("ERROR_LIMIT", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR_TOXIC", "content_filter"),
        ("ERROR", "stop"),
        ("TIMEOUT", "stop"),
        ("SOMETHING_NEW", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(cohere_reason: str | None, canonical: str) -> None:
    assert finish_reason(cohere_reason) == canonical


def test_usage_is_what_cohere_bills_else_what_it_processed() -> None:
    both = {
        "billed_units": {"input_tokens": 21, "output_tokens": 105},
        "tokens": {"input_tokens": 186, "output_tokens": 105},  # 165 of them Cohere's own prompt template
    }
    assert usage_of(both) == Usage(prompt_tokens=21, completion_tokens=105)
    assert usage_of({**both, "billed_units": {"input_tokens": 0, "output_tokens": 0}}) == Usage()
    assert usage_of({"tokens": {"input_tokens": 9, "output_tokens": 4}}) == Usage(prompt_tokens=9, completion_tokens=4)
    assert usage_of({"billed_units": {"input_tokens": 21.0, "output_tokens": 5.0}, "cached_tokens": 4}) == Usage(
        prompt_tokens=21, completion_tokens=5, cached_tokens=4
    )
    assert usage_of(None) == Usage()


def _parse(body: dict[str, Any], *, endpoint: str = "chat") -> dict[str, Any]:
    call = _call({"messages": HELLO}, endpoint=endpoint)
    parsed = CohereAdapter().parse_response(call, UpstreamResponse(status=200, headers={}, body=orjson.dumps(body)))
    result: dict[str, Any] = orjson.loads(parsed.body)
    assert result["usage"]["prompt_tokens"] == parsed.usage.prompt_tokens
    return result


def test_parse_text_thinking_and_tool_calls() -> None:
    usage = {"billed_units": {"input_tokens": 3, "output_tokens": 4}, "tokens": {"input_tokens": 9, "output_tokens": 4}}
    text = _parse(
        {
            "id": "abc",
            "finish_reason": "COMPLETE",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "text", "text": "Hi "},
                    {"type": "text", "text": "there"},
                ],
            },
            "usage": usage,
        }
    )
    assert text["id"] == "chatcmpl-abc" and text["model"] == "command-a-03-2025" and text["object"] == "chat.completion"
    choice = text["choices"][0]
    assert choice["message"]["content"] == "Hi there" and choice["message"]["reasoning_content"] == "hmm"
    assert choice["finish_reason"] == "stop"
    assert text["usage"] == {
        "prompt_tokens": 3,  # billed, not the 9 processed
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    tools = _parse(
        {
            "id": "def",
            "finish_reason": "TOOL_CALL",
            "message": {
                "role": "assistant",
                "tool_plan": "I will look it up.",
                "tool_calls": [
                    {
                        "id": "get_weather_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"a":1}'},
                    },
                    {"id": "get_time_2", "type": "function", "function": {"name": "get_time", "arguments": {"b": 2}}},
                ],
            },
            "usage": usage,
        }
    )
    message = tools["choices"][0]["message"]
    assert message["content"] is None and message["reasoning_content"] == "I will look it up."
    assert message["tool_calls"] == [
        {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"a":1}'}},
        {"id": "get_time_2", "type": "function", "function": {"name": "get_time", "arguments": '{"b":2}'}},
    ]
    assert tools["choices"][0]["finish_reason"] == "tool_calls"


def test_parse_embeddings() -> None:
    body = {
        "id": "e",
        "embeddings": {"float": [[0.5, 0.25], [1.0, 0.0]]},
        "meta": {"billed_units": {"input_tokens": 6}},
    }
    result = _parse(body, endpoint="embeddings")
    assert [d["embedding"] for d in result["data"]] == [[0.5, 0.25], [1.0, 0.0]]
    assert [d["index"] for d in result["data"]] == [0, 1]
    assert result["usage"] == {"prompt_tokens": 6, "total_tokens": 6}


def test_error_message_reads_cohere_bodies() -> None:
    adapter = CohereAdapter()
    assert (
        adapter.error_message(
            UpstreamResponse(status=401, headers={}, body=b'{"id":"x","message":"invalid api token"}')
        )
        == "invalid api token"
    )
    assert (
        adapter.error_message(UpstreamResponse(status=502, headers={}, body=b"<html>bad gateway</html>"))
        == "<html>bad gateway</html>"
    )
    assert adapter.error_message(UpstreamResponse(status=500, headers={}, body=b"")) == "HTTP 500"


def _events(chunks: list[bytes]) -> list[Any]:
    """The canonical SSE events as JSON ("[DONE]" as a string), with the per-chunk timestamp removed."""
    out: list[Any] = []
    for chunk in chunks:
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
        payload = chunk[6:-2]
        data = payload.decode() if payload == b"[DONE]" else orjson.loads(payload)
        if isinstance(data, dict):
            data.pop("created", None)
        out.append(data)
    return out


def _translate(wire: bytes, split: int, *, usage: bool = False) -> tuple[list[Any], Usage]:
    translator = CohereStreamTranslator(model="command-a-03-2025", client_wants_usage=usage)
    chunks: list[bytes] = []
    for at in range(0, len(wire), split):
        chunks += translator.feed(wire[at : at + split])
    chunks += translator.finish()
    return _events(chunks), translator.usage


def _tool_answer() -> Answer:
    body = {
        "model": "command-a-03-2025",
        "messages": [{"role": "user", "content": "call tool parallel"}],
        "tools": TOOLS,
    }
    return answer_for(body)


@pytest.mark.parametrize("split", [1, 2, 7, 13, 64, 100_000])
def test_stream_translation_survives_any_split(split: int) -> None:
    wire = b"".join(stream_events(_tool_answer(), response_id="r1"))
    reference, _ = _translate(wire, len(wire))
    events, usage = _translate(wire, split)
    assert events == reference
    crlf, _ = _translate(wire.replace(b"\n", b"\r\n"), split)
    assert crlf == reference
    assert usage == Usage(prompt_tokens=3, completion_tokens=8)  # billed: the prompt's words, not the template


def test_stream_translation_of_tool_calls() -> None:
    events, usage = _translate(b"".join(stream_events(_tool_answer(), response_id="r1")), 5, usage=True)
    assert all(e["id"] == "chatcmpl-r1" and e["model"] == "command-a-03-2025" for e in events[:-1])
    deltas = [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    plan = "".join(d.get("reasoning_content", "") for d in deltas)
    assert plan == "I will call get_weather, get_time."
    starts = [d["tool_calls"][0] for d in deltas if "tool_calls" in d and "id" in d["tool_calls"][0]]
    assert [(s["index"], s["function"]["name"]) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    assert starts[0]["id"].startswith("get_weather_")
    for index in (0, 1):
        fragments = [
            d["tool_calls"][0]["function"]["arguments"]
            for d in deltas
            if "tool_calls" in d and d["tool_calls"][0]["index"] == index and "id" not in d["tool_calls"][0]
        ]
        assert len(fragments) > 1, "arguments are relayed fragment by fragment"
        assert json.loads("".join(fragments)) == {"input": "call tool parallel"}
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == usage.prompt_tokens == 3
    assert events[-1] == "[DONE]"


def test_stream_translation_of_text_thinking_and_done_marker() -> None:
    answer = Answer(
        text="Hello big world", thinking="let me think", usage={"tokens": {"input_tokens": 5, "output_tokens": 3}}
    )
    wire = b"".join(stream_events(answer, response_id="r2")) + b"data: [DONE]\n\n"
    events, usage = _translate(wire, 3)
    deltas = [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e["choices"]]
    assert [d.get("content") for d in deltas if d.get("content")] == ["Hello", " big", " world"]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "let me think"
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"
    assert usage == Usage(prompt_tokens=5, completion_tokens=3)


def test_stream_error_and_cut_streams() -> None:
    wire = b"".join(stream_events(Answer(text="half"), response_id="r3", error="model overloaded"))
    events, _ = _translate(wire, 4)
    assert events[-2] == {
        "error": {"message": "model overloaded", "type": "upstream_error", "param": None, "code": "upstream_error"}
    }
    assert events[-1] == "[DONE]"
    cut = b"".join(stream_events(Answer(text="half"), response_id="r4")[:-1])
    events, _ = _translate(cut, 9)
    assert "before its message-end" in events[-2]["error"]["message"] and events[-1] == "[DONE]"


# ---------------------------------------------------------------- c. end to end through a real gateway


@pytest.fixture(scope="module")
def gateway(fake: FakeCohere, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("cohere-gateway"),
        providers={"cohere": {"base_url": fake.base_url}},
        env={"COHERE_API_KEY": fake.api_key},
        config={"upstream": {"timeout": 2}},
    ) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


def _deltas(chunks: list[Any]) -> list[Any]:
    return [c.choices[0].delta for c in chunks if c.choices]


@pytest.mark.anyio
async def test_e2e_plain_chat_is_translated_priced_and_logged(
    gateway: Gateway, client: openai.AsyncOpenAI, fake: FakeCohere
) -> None:
    fake.clear()
    raw = await client.chat.completions.with_raw_response.create(
        model="cohere/command-a-03-2025", messages=HELLO, temperature=0.3, top_p=0.9
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake reply to: Hello there gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 6)  # billed units
    sent = fake.last_request
    assert sent.path == "/v2/chat" and sent.header("authorization") == f"Bearer {fake.api_key}"
    assert sent.json == {"model": "command-a-03-2025", "messages": HELLO, "temperature": 0.3, "p": 0.9}
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.status, row.provider, row.upstream_model) == ("ok", "cohere", "command-a-03-2025")
    assert (row.prompt_tokens, row.completion_tokens) == (3, 6)
    assert row.cost_nano > 0 and row.price_source is not None and row.price_source.startswith("genai-prices")


@pytest.mark.anyio
async def test_e2e_stream_with_and_without_usage(gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="cohere/command-r-08-2024", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in raw.parse()]
    pieces = [d.content for d in _deltas(chunks) if d.content]
    assert len(pieces) == 6 and "".join(pieces) == "fake reply to: Hello there gateway"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        3,
        6,
    )
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert row.stream and (row.provider, row.prompt_tokens, row.completion_tokens) == ("cohere", 3, 6)
    assert row.cost_nano > 0
    plain = [
        chunk
        async for chunk in await client.chat.completions.create(
            model="cohere/command-r-08-2024", messages=HELLO, stream=True
        )
    ]
    assert all(c.choices and c.usage is None for c in plain)


@pytest.mark.anyio
async def test_e2e_tool_round_trip(client: openai.AsyncOpenAI, fake: FakeCohere) -> None:
    ask: list[Any] = [{"role": "user", "content": "call tool in parallel please"}]
    first = await client.chat.completions.create(model="cohere/command-a-03-2025", messages=ask, tools=TOOLS)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls
    assert [c.function.name for c in message.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(message.tool_calls[0].function.arguments) == {"input": "call tool in parallel please"}
    history: list[Any] = [
        *ask,
        message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(message.tool_calls)),
    ]
    fake.clear()
    final = await client.chat.completions.create(model="cohere/command-a-03-2025", messages=history, tools=TOOLS)
    assert final.choices[0].message.content == "fake answer from tools: result 0 | result 1"
    assert final.choices[0].finish_reason == "stop"
    sent = fake.last_request.json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "tool_calls": [c.model_dump() for c in message.tool_calls],
        "tool_plan": "I will call get_weather, get_time.",
    }, "the plan we returned as reasoning_content goes back as Cohere's tool_plan"
    assert sent[2] == {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "result 0"}


@pytest.mark.anyio
async def test_e2e_streamed_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    ask: list[Any] = [{"role": "user", "content": "call tool for Paris"}]
    stream = await client.chat.completions.create(
        model="cohere/command-a-03-2025", messages=ask, tools=TOOLS, stream=True
    )
    chunks = [chunk async for chunk in stream]
    calls = [tc for d in _deltas(chunks) for tc in d.tool_calls or ()]
    assert calls[0].id and calls[0].function and calls[0].function.name == "get_weather"
    fragments = [tc.function.arguments for tc in calls[1:] if tc.function and tc.function.arguments]
    assert len(fragments) > 1, "argument deltas arrive in more than one chunk"
    arguments = "".join(fragments)
    assert json.loads(arguments) == {"input": "call tool for Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    history: list[Any] = [
        *ask,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": calls[0].id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
    ]
    final = await client.chat.completions.create(
        model="cohere/command-a-03-2025", messages=history, tools=TOOLS, stream=True
    )
    text = "".join(d.content or "" for d in _deltas([c async for c in final]))
    assert text == "fake answer from tools: sunny"


@pytest.mark.anyio
async def test_e2e_finish_reasons_and_reasoning(client: openai.AsyncOpenAI) -> None:
    cut = await client.chat.completions.create(model="cohere/command-a-03-2025", messages=HELLO, max_tokens=2)
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("fake reply", "length")
    stopped = await client.chat.completions.create(model="cohere/command-a-03-2025", messages=HELLO, stop="there")
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == ("fake reply to: Hello ", "stop")
    blocked = await client.chat.completions.create(model="cohere/fake-finish-error-toxic", messages=HELLO)
    assert blocked.choices[0].finish_reason == "content_filter"
    stream = await client.chat.completions.create(model="cohere/fake-finish-error-toxic", messages=HELLO, stream=True)
    assert [c async for c in stream][-1].choices[0].finish_reason == "content_filter"
    thought = await client.chat.completions.create(model="cohere/command-a-reasoning-08-2025", messages=HELLO)
    assert (thought.choices[0].message.model_extra or {})["reasoning_content"] == "thinking about: Hello there gateway"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("fake-status-400", openai.BadRequestError, 400),
        ("fake-status-401", openai.AuthenticationError, 401),
        ("command-nope", openai.NotFoundError, 404),
        ("fake-status-429", openai.RateLimitError, 429),
        ("fake-status-500", openai.InternalServerError, 502),
        ("fake-delay-3", openai.APIStatusError, 504),
    ],
)
async def test_e2e_errors(
    gateway: Gateway, client: openai.AsyncOpenAI, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as caught:
        await client.chat.completions.create(model=f"cohere/{model}", messages=HELLO)
    assert caught.value.status_code == status
    if status == 404:
        assert "model 'command-nope' not found" in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
        assert "per minute request limit" in caught.value.message
    if status == 502:
        assert "cohere" in caught.value.message and "internal server error" in caught.value.message
    row = await gateway.log_row(caught.value.response.headers["alephant-request-id"])
    assert (row.status, row.http_status, row.provider) == ("error", status, "cohere")


@pytest.mark.anyio
async def test_e2e_mid_stream_error(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="cohere/fake-stream-error", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="internal error"):
        async for _ in stream:
            pass


@pytest.mark.anyio
async def test_e2e_embeddings(gateway: Gateway, client: openai.AsyncOpenAI, fake: FakeCohere) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model="cohere/embed-english-v3.0", input=["one two", "three"]
    )
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [8, 8] and result.usage.prompt_tokens == 3
    assert fake.last_request.path == "/v2/embed"
    assert fake.last_request.json == {
        "model": "embed-english-v3.0",
        "texts": ["one two", "three"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.endpoint, row.provider, row.upstream_model, row.prompt_tokens) == (
        "embeddings",
        "cohere",
        "embed-english-v3.0",
        3,
    )
    assert row.cost_nano == 300 and row.price_source == "alephant catalog", "3 tokens at $0.10 per million"
    sized = await client.embeddings.create(model="cohere/embed-v4.0", input="hello", dimensions=256)
    assert len(sized.data[0].embedding) == 256
