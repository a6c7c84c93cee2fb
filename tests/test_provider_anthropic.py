"""The Anthropic Messages adapter: the fake's fidelity (official SDK), golden request bodies, response and
stream translation, and end to end through a real gateway with the openai SDK as the client."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicAdapter
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.anthropic_upstream import FakeAnthropic

KEY = "sk-ant-test-key"
SPEC = ProviderSpec(id="anthropic", adapter="anthropic", base_url="https://api.anthropic.com/v1", api_key=KEY)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def make_call(
    body: dict[str, Any], *, model: str = "claude-haiku-4-5", spec: ProviderSpec = SPEC, **kw: Any
) -> UpstreamCall:
    return UpstreamCall(
        endpoint=kw.pop("endpoint", "chat"),
        provider=spec,
        model=model,
        body=body,
        raw=orjson.dumps(body),
        stream=bool(body.get("stream")),
        **kw,
    )


def wire(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The JSON the adapter sends upstream for a canonical ``body``."""
    result: dict[str, Any] = orjson.loads(AnthropicAdapter().build_request(make_call(body, **kw)).body)
    return result


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


# ---------------------------------------------------------------- a. fidelity: the official SDK against the fake


@pytest.fixture(scope="module")
def claude(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.sdk_base_url, api_key=fake.api_key, max_retries=0) as client:
        yield client


def test_sdk_plain_message(claude: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello there"}],
    )
    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_") and message.model == "claude-haiku-4-5"
    assert [block.type for block in message.content] == ["text"]
    assert isinstance(message.content[0], anthropic.types.TextBlock)
    assert message.content[0].text == "fake reply to: Hello there"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2 + 3 + 2 + 3, 5)
    sent = fake.last_request
    assert sent.path == "/v1/messages" and sent.header("anthropic-version")


def test_sdk_streaming_events_and_accumulated_message(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi you"}], stream=True
        )
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 5  # one per word
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi you"}]
    ) as stream:
        final = stream.get_final_message()
    assert isinstance(final.content[0], anthropic.types.TextBlock)
    assert final.content[0].text == "fake reply to: Hi you"
    assert final.usage.output_tokens == 5


def test_sdk_parallel_tool_use_and_disable_parallel(claude: anthropic.Anthropic) -> None:
    tools: list[Any] = [ANTHROPIC_WEATHER, {"name": "get_time", "input_schema": {"type": "object"}}]
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=64, tools=tools, messages=[{"role": "user", "content": "call tools"}]
    )
    uses = [block for block in message.content if isinstance(block, anthropic.types.ToolUseBlock)]
    assert [use.name for use in uses] == ["get_weather", "get_time"]
    assert uses[0].input == {"input": "call tools"} and message.stop_reason == "tool_use"
    single = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        tools=tools,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "call tools"}],
    )
    assert [b.type for b in single.content] == ["text", "tool_use"]


def test_sdk_thinking_blocks(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "why"}],
    )
    assert isinstance(message.content[0], anthropic.types.ThinkingBlock)
    assert message.content[0].thinking == "Thinking about: why" and message.content[0].signature.startswith("sig_")


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("claude-nonexistent-9", anthropic.NotFoundError, 404),
        ("claude-haiku-4-5-fake-status-429", anthropic.RateLimitError, 429),
        ("claude-haiku-4-5-fake-status-529", anthropic.OverloadedError, 529),
        ("claude-haiku-4-5-fake-status-500", anthropic.InternalServerError, 500),
    ],
)
def test_sdk_errors_raise_the_sdk_classes(
    claude: anthropic.Anthropic, model: str, error: type[anthropic.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as raised:
        claude.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["message"]
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "1"


def test_sdk_wrong_key_and_mid_stream_error(fake: FakeAnthropic) -> None:
    with (
        anthropic.Anthropic(base_url=fake.sdk_base_url, api_key="wrong", max_retries=0) as client,
        pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"),
    ):
        client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with anthropic.Anthropic(base_url=fake.sdk_base_url, api_key=fake.api_key, max_retries=0) as client:
        stream = client.messages.create(
            model="claude-haiku-4-5-fake-stream-error",
            max_tokens=8,
            messages=[{"role": "user", "content": "x"}],
            stream=True,
        )
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            list(stream)


# ---------------------------------------------------------------- b. golden request bodies


def test_golden_plain_request() -> None:
    body = {
        "model": "anthropic/claude-haiku-4-5",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello"},
        ],
        "max_completion_tokens": 100,
        "temperature": 1.5,
        "top_p": 0.5,
        "stop": "END",
        "seed": 7,
        "user": "user-42",
        "presence_penalty": 0.2,
        "n": 1,
    }
    request = AnthropicAdapter().build_request(make_call(body))
    assert (request.method, request.url, request.stream) == ("POST", "https://api.anthropic.com/v1/messages", False)
    assert request.headers == {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": KEY}
    assert orjson.loads(request.body) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": "You are terse.\n\nAnswer in French.",
        "messages": [{"role": "user", "content": "Hello"}],
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "metadata": {"user_id": "user-42"},
    }


def test_golden_stream_request_and_options() -> None:
    spec = ProviderSpec(
        id="claude",
        adapter="anthropic",
        base_url="http://proxy/v1",
        api_key=KEY,
        options={"api_version": "2026-10-21", "beta": "context-1m-2025-08-07"},
    )
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "temperature": 0.2, "stop": ["a", "b"]}
    request = AnthropicAdapter().build_request(make_call(body, spec=spec, client_wants_usage=True))
    assert request.url == "http://proxy/v1/messages" and request.stream
    assert request.headers == {
        "content-type": "application/json",
        "anthropic-version": "2026-10-21",
        "anthropic-beta": "context-1m-2025-08-07",
        "x-api-key": KEY,
        "accept": "text/event-stream",
    }
    assert orjson.loads(request.body) == {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
        "stop_sequences": ["a", "b"],
        "stream": True,
    }, "2026-10-21 removed sampling parameters; stream_options has no Anthropic equivalent"


@pytest.mark.parametrize(
    ("fields", "catalog", "expected"),
    [
        ({"max_tokens": 50}, 64000, 50),
        ({"max_completion_tokens": 60, "max_tokens": 50}, None, 60),
        ({}, 64000, 64000),
        ({}, None, 4096),
    ],
)
def test_max_tokens_from_request_then_catalog_then_default(
    fields: dict[str, Any], catalog: int | None, expected: int
) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], **fields}
    assert wire(body, max_output_tokens=catalog)["max_tokens"] == expected


def test_golden_tool_conversation() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and the time?"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "Thanks, and tomorrow?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "toolu_3", "type": "function", "function": {"name": "get_weather", "arguments": "not json"}}
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
        ],
        "tools": [WEATHER, TIME],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    assert wire(body) == {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [
            {"role": "user", "content": "Weather in Paris and the time?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "noon"}]},
                    {"type": "text", "text": "Thanks, and tomorrow?"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_3",
                        "name": "get_weather",
                        "input": {"_raw_arguments": "not json"},
                    }
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_3"}]},
        ],
        "tools": [ANTHROPIC_WEATHER, {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("none", False, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_time"}}, None, {"type": "tool", "name": "get_time"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_mapping(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, TIME]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert wire(body).get("tool_choice") == expected
    assert "tool_choice" not in wire({"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"})


def test_golden_images_documents_and_merged_turns() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                    },
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            },
            {"role": "user", "content": "And this one?"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/gif,GIF89a"}}]},
            {"role": "assistant", "content": ""},
        ],
    }
    assert wire(body)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "text", "text": "And this one?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"}},
            ],
        }
    ]


def test_cached_system_prompt_keeps_blocks() -> None:
    body = {
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "Hi"},
        ]
    }
    assert wire(body)["system"] == [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]


@pytest.mark.parametrize(
    ("model", "fields", "expected"),
    [
        ("claude-sonnet-4-5", {"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3}),
        ("claude-sonnet-4-5", {"top_p": 0.9}, {"top_p": 0.9}),
        ("claude-sonnet-4-6", {"temperature": 0}, {"temperature": 0.0}),
        ("claude-opus-4-7", {"temperature": 0.3, "top_p": 0.9}, {}),
        ("claude-opus-5-5", {"temperature": 0.3}, {}),
        ("claude-fable-5-1", {"top_p": 0.3}, {}),
        ("claude-mythos-preview", {"temperature": 0.3}, {}),
        ("my-proxy-model", {"temperature": 0.3}, {"temperature": 0.3}),
    ],
)
def test_sampling_parameters_per_model(model: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    sent = wire({"messages": [{"role": "user", "content": "x"}], **fields}, model=model)
    assert {k: sent[k] for k in ("temperature", "top_p") if k in sent} == expected


@pytest.mark.parametrize(
    ("model", "fields", "thinking", "output_config"),
    [
        ("claude-sonnet-4-6", {"reasoning_effort": "high"}, {"type": "adaptive"}, {"effort": "high"}),
        ("claude-opus-5-5", {"reasoning_effort": "minimal"}, {"type": "adaptive"}, {"effort": "low"}),
        ("claude-fable-5-2", {"reasoning_effort": "xhigh"}, {"type": "adaptive"}, {"effort": "xhigh"}),
        (
            "claude-haiku-4-5",
            {"reasoning_effort": "medium", "max_tokens": 10000},
            {"type": "enabled", "budget_tokens": 5000},
            None,
        ),
        (
            "claude-sonnet-4-5",
            {"reasoning_effort": "low", "max_tokens": 2000},
            {"type": "enabled", "budget_tokens": 1024},
            None,
        ),
        ("claude-haiku-4-5", {"reasoning_effort": "high", "max_tokens": 1024}, None, None),
        ("claude-haiku-4-5", {"reasoning_effort": "none"}, None, None),
        ("claude-sonnet-4-6", {"reasoning_effort": "high", "tool_choice": "required", "tools": [WEATHER]}, None, None),
        ("my-proxy-model", {"reasoning_effort": "high"}, None, None),
    ],
)
def test_reasoning_effort_to_thinking(
    model: str, fields: dict[str, Any], thinking: dict[str, Any] | None, output_config: dict[str, Any] | None
) -> None:
    sent = wire({"messages": [{"role": "user", "content": "x"}], "temperature": 0.5, **fields}, model=model)
    assert sent.get("thinking") == thinking
    assert sent.get("output_config") == output_config
    if thinking is not None:
        assert "temperature" not in sent, "Anthropic refuses temperature with thinking"


def test_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}},
    }
    sent = wire(body, model="claude-opus-4-8")
    assert sent["output_config"] == {"effort": "low", "format": {"type": "json_schema", "schema": schema}}
    body["response_format"] = {"type": "json_object"}
    assert wire(body, model="claude-opus-4-8")["output_config"] == {"effort": "low"}


def test_embeddings_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="no embeddings API"):
        AnthropicAdapter().build_request(make_call({"input": "x"}, endpoint="embeddings"))


# ---------------------------------------------------------------- response and stream translation


def response(body: dict[str, Any], status: int = 200) -> UpstreamResponse:
    return UpstreamResponse(status=status, headers={}, body=orjson.dumps(body))


def test_parse_response_text_thinking_tools_and_usage() -> None:
    upstream = {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6-20260101",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Checking "},
            {"type": "text", "text": "now."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 30,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 12},
        },
    }
    parsed = AnthropicAdapter().parse_response(make_call({"messages": []}), response(upstream))
    assert parsed.usage == Usage(
        prompt_tokens=60, completion_tokens=40, cached_tokens=30, cache_write_tokens=20, reasoning_tokens=12
    )
    assert parsed.response_model == "claude-sonnet-4-6-20260101"
    body = orjson.loads(parsed.body)
    assert body["id"] == "chatcmpl-msg_01ABC" and body["object"] == "chat.completion"
    assert body["model"] == "claude-sonnet-4-6-20260101"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking now.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
                "reasoning_content": "Let me think.",
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 60,
        "completion_tokens": 40,
        "total_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    upstream = {
        "id": "msg_1",
        "content": [],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
    body = orjson.loads(AnthropicAdapter().parse_response(make_call({}), response(upstream)).body)
    assert body["choices"][0]["finish_reason"] == finish
    assert body["choices"][0]["message"]["content"] == ""


def test_error_message() -> None:
    adapter = AnthropicAdapter()
    error = {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-x"}, "request_id": "req_1"}
    assert adapter.error_message(response(error, 404)) == "model: claude-x"
    assert adapter.error_message(UpstreamResponse(status=502, headers={}, body=b"<html>bad gateway</html>")) == (
        "<html>bad gateway</html>"
    )
    assert adapter.error_message(UpstreamResponse(status=503, headers={}, body=b"")) == "HTTP 503"


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


STREAM = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_S1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-6",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    },
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm, "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "weather."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "check. ☀"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 2},
    {
        "type": "content_block_start",
        "index": 3,
        "content_block": {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {}},
    },
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 3},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89, "output_tokens_details": {"thinking_tokens": 9}},
    },
    {"type": "message_stop"},
)

EXPECTED_DELTAS: list[tuple[dict[str, Any], str | None]] = [
    ({"role": "assistant", "content": ""}, None),
    ({"reasoning_content": "Hmm, "}, None),
    ({"reasoning_content": "weather."}, None),
    ({"content": "Let me "}, None),
    ({"content": "check. ☀"}, None),
    (
        {
            "tool_calls": [
                {"index": 0, "id": "toolu_A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]
        },
        None,
    ),
    ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
    ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
    (
        {
            "tool_calls": [
                {"index": 1, "id": "toolu_B", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]
        },
        None,
    ),
    ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
    ({}, "tool_calls"),
]


def translate(pieces: list[bytes], *, include_usage: bool = True) -> tuple[list[Any], Usage]:
    translator = AnthropicAdapter().stream(
        make_call({"stream": True}, model="claude-sonnet-4-6", client_wants_usage=include_usage)
    )
    out: list[bytes] = []
    for piece in pieces:
        out += translator.feed(piece)
    out += translator.finish()
    assert all(event.startswith(b"data: ") and event.endswith(b"\n\n") for event in out)
    payloads = [event[6:-2] for event in out]
    return [p.decode() if p == b"[DONE]" else orjson.loads(p) for p in payloads], translator.usage


def test_stream_translation_whole() -> None:
    events, usage = translate([STREAM])
    chunks = [e for e in events if isinstance(e, dict) and e.get("choices")]
    assert [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks] == EXPECTED_DELTAS
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_S1"} and {c["model"] for c in chunks} == {"claude-sonnet-4-6"}
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 125
    assert events[-1] == "[DONE]"
    assert usage == Usage(prompt_tokens=125, completion_tokens=89, cached_tokens=100, reasoning_tokens=9)


def _strip_created(events: list[Any]) -> list[Any]:
    return [{k: v for k, v in e.items() if k != "created"} if isinstance(e, dict) else e for e in events]


def test_stream_translation_at_awkward_splits() -> None:
    whole, _ = translate([STREAM])
    one_byte, _ = translate([STREAM[i : i + 1] for i in range(len(STREAM))])  # splits inside UTF-8 ☀ too
    crlf = STREAM.replace(b"\n", b"\r\n")
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(crlf)), 40))
    random_split, _ = translate([crlf[a:b] for a, b in zip([0, *cuts], [*cuts, len(crlf)], strict=True)])
    assert _strip_created(one_byte) == _strip_created(whole) == _strip_created(random_split)


def test_stream_usage_chunk_only_when_asked_and_usage_tracked_incrementally() -> None:
    events, _ = translate([STREAM], include_usage=False)
    assert all(not isinstance(e, dict) or e["choices"] for e in events) and events[-1] == "[DONE]"
    translator = AnthropicAdapter().stream(make_call({"stream": True}))
    translator.feed(STREAM[: STREAM.index(b"event: ping")])
    assert translator.usage.prompt_tokens == 125, "usage is known from message_start on"


def test_stream_error_event_and_cut_streams() -> None:
    head = STREAM[: STREAM.index(b"event: content_block_stop")]
    error = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    events, _ = translate([head + error + b"event: ping\ndata: {}\n\n"])
    assert events[-1] == {
        "error": {"message": "Overloaded", "type": "upstream_error", "param": None, "code": "overloaded_error"}
    }
    cut, _ = translate([head])
    assert cut[-1]["error"]["message"].startswith("The Anthropic stream ended before")
    without_stop, usage = translate([STREAM[: STREAM.index(b"event: message_stop")]])
    assert without_stop[-3]["choices"][0]["finish_reason"] == "tool_calls" and without_stop[-1] == "[DONE]"
    assert usage.completion_tokens == 89


# ---------------------------------------------------------------- c. end to end through a real gateway

BADKEY_ENV = "ALEPHANT_TEST_ANTHROPIC_BADKEY"
NEXT_ENV = "ALEPHANT_TEST_ANTHROPIC_NEXT"


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    providers = {
        "anthropic": {"base_url": fake.base_url},
        "claude-badkey": {"adapter": "anthropic", "base_url": fake.base_url, "api_key_env": BADKEY_ENV},
        "claude-next": {
            "adapter": "anthropic",
            "base_url": fake.base_url,
            "api_key_env": NEXT_ENV,
            "options": {"api_version": "2026-10-21"},
        },
    }
    env = {"ANTHROPIC_API_KEY": fake.api_key, BADKEY_ENV: "sk-ant-wrong", NEXT_ENV: fake.api_key}
    tmp: Path = tmp_path_factory.mktemp("anthropic-gateway")
    with running_gateway(tmp, providers=providers, env=env, config={"upstream": {"timeout": 2}}) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


HELLO = [{"role": "user", "content": "Hello there gateway"}]


@pytest.mark.anyio
async def test_e2e_plain_chat_usage_and_log_row(
    client: openai.AsyncOpenAI, gateway: Gateway, fake: FakeAnthropic
) -> None:
    fake.clear()
    raw = await client.chat.completions.with_raw_response.create(model="anthropic/claude-haiku-4-5", messages=HELLO)
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-msg_") and completion.model == "claude-haiku-4-5"
    assert completion.choices[0].message.content == "fake reply to: Hello there gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 6)
    sent = fake.last_request
    assert sent.header("x-api-key") == fake.api_key and sent.header("anthropic-version") == "2023-06-01"
    assert MASTER_KEY not in str(sent.headers)
    assert sent.json == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64000,  # the catalog's max output for the model
        "messages": [{"role": "user", "content": "Hello there gateway"}],
    }
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.status, row.provider, row.upstream_model) == ("ok", "anthropic", "claude-haiku-4-5")
    assert (row.prompt_tokens, row.completion_tokens) == (6, 6)
    assert row.cost_nano == 6 * 1_000 + 6 * 5_000  # $1 / $5 per MTok (genai-prices)
    assert row.price_source is not None and row.price_source.startswith("genai-prices")


@pytest.mark.anyio
async def test_e2e_streaming_chunks_and_usage(client: openai.AsyncOpenAI, gateway: Gateway) -> None:
    stream = await client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 6 and "".join(texts) == "fake reply to: Hello there gateway"
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    raw = await client.chat.completions.with_raw_response.create(
        model="anthropic/claude-haiku-4-5", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    with_usage = [chunk async for chunk in raw.parse()]
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert (with_usage[-1].usage.prompt_tokens, with_usage[-1].usage.completion_tokens) == (6, 6)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert row.stream is True and (row.prompt_tokens, row.completion_tokens) == (6, 6) and row.cost_nano > 0


@pytest.mark.anyio
async def test_e2e_tool_round_trip(client: openai.AsyncOpenAI, fake: FakeAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "call tool for Paris"}]
    first = await client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Calling get_weather."
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id.startswith("toolu_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"input": "call tool for Paris"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny 21C"},
    ]
    final = await client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=messages, tools=[WEATHER])
    assert final.choices[0].message.content == "tool said: sunny 21C" and final.choices[0].finish_reason == "stop"
    assert fake.last_request.json["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Calling get_weather."},
                {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"input": "call tool for Paris"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny 21C"}]},
    ]


@pytest.mark.anyio
async def test_e2e_streamed_tool_round_trip_with_parallel_calls(client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "call tools for Paris"}]
    stream = await client.chat.completions.create(
        model="anthropic/claude-haiku-4-5", messages=messages, tools=[WEATHER, TIME], stream=True
    )
    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    finish = None
    async for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            if delta.function is not None:
                entry["name"] += delta.function.name or ""
                if delta.function.arguments:
                    entry["arguments"] += delta.function.arguments
                    fragments[delta.index] = fragments.get(delta.index, 0) + 1
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert all(count > 1 for count in fragments.values()), "argument deltas must stream in several chunks"
    assert json.loads(calls[1]["arguments"]) == {"input": "call tools for Paris"}
    messages.append(
        {
            "role": "assistant",
            "content": "Calling get_weather.",
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in (calls[0], calls[1])
            ],
        }
    )
    messages += [
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    answer = await client.chat.completions.create(
        model="anthropic/claude-haiku-4-5", messages=messages, tools=[WEATHER, TIME], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
    assert text == "tool said: sunny noon"
    single = await client.chat.completions.create(
        model="anthropic/claude-haiku-4-5", messages=messages[:1], tools=[WEATHER, TIME], parallel_tool_calls=False
    )
    assert single.choices[0].message.tool_calls is not None and len(single.choices[0].message.tool_calls) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "extra", "finish"),
    [
        ("claude-haiku-4-5", {}, "stop"),
        ("claude-haiku-4-5", {"max_tokens": 2}, "length"),
        ("claude-haiku-4-5", {"stop": ["there"]}, "stop"),
        ("claude-haiku-4-5", {"tools": [WEATHER], "tool_choice": "required"}, "tool_calls"),
        ("claude-haiku-4-5-fake-refusal", {}, "content_filter"),
    ],
)
async def test_e2e_finish_reasons(client: openai.AsyncOpenAI, model: str, extra: dict[str, Any], finish: str) -> None:
    completion = await client.chat.completions.create(model=f"anthropic/{model}", messages=HELLO, **extra)
    assert completion.choices[0].finish_reason == finish
    stream = await client.chat.completions.create(model=f"anthropic/{model}", messages=HELLO, stream=True, **extra)
    reasons = [c.choices[0].finish_reason async for c in stream if c.choices and c.choices[0].finish_reason]
    assert reasons == [finish]


@pytest.mark.anyio
async def test_e2e_cache_and_reasoning_tokens(client: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="anthropic/claude-sonnet-4-6-fake-cache-read-100-cache-write-50",
        messages=HELLO,
        reasoning_effort="high",
        temperature=0.2,
    )
    completion = raw.parse()
    assert completion.choices[0].message.model_extra is not None
    assert completion.choices[0].message.model_extra["reasoning_content"] == "Thinking about: Hello there gateway"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None and usage.completion_tokens_details is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (6 + 150, 100)
    assert (usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (6 + 5, 5)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.prompt_tokens, row.cached_tokens, row.reasoning_tokens) == (156, 100, 5) and row.cost_nano > 0
    stream = await client.chat.completions.create(
        model="anthropic/claude-sonnet-4-6", messages=HELLO, reasoning_effort="low", stream=True
    )
    reasoning = "".join(
        [(c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" async for c in stream if c.choices]
    )
    assert reasoning == "Thinking about: Hello there gateway"


@pytest.mark.anyio
async def test_e2e_api_version_option_drops_sampling(client: openai.AsyncOpenAI, fake: FakeAnthropic) -> None:
    completion = await client.chat.completions.create(
        model="claude-next/claude-haiku-4-5", messages=HELLO, temperature=0.3, max_tokens=20
    )
    assert completion.choices[0].message.content == "fake reply to: Hello there gateway"
    sent = fake.last_request
    assert sent.header("anthropic-version") == "2026-10-21" and "temperature" not in sent.json
    assert sent.json["max_tokens"] == 20


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "error", "status", "message"),
    [
        ("anthropic/claude-haiku-4-5-fake-status-400", openai.BadRequestError, 400, "Bad request."),
        ("claude-badkey/claude-haiku-4-5", openai.AuthenticationError, 401, "invalid x-api-key"),
        ("anthropic/claude-nonexistent-9", openai.NotFoundError, 404, "model: claude-nonexistent-9"),
        ("anthropic/claude-haiku-4-5-fake-status-429", openai.RateLimitError, 429, "rate limit"),
        ("anthropic/claude-haiku-4-5-fake-status-500", openai.InternalServerError, 502, "Internal server error"),
        ("anthropic/claude-haiku-4-5-fake-status-529", openai.InternalServerError, 502, "Overloaded"),
        ("anthropic/claude-haiku-4-5-fake-delay-3", openai.InternalServerError, 504, "timed out"),
    ],
)
async def test_e2e_error_mapping(
    client: openai.AsyncOpenAI, model: str, error: type[openai.APIStatusError], status: int, message: str
) -> None:
    with pytest.raises(error) as raised:
        await client.chat.completions.create(model=model, messages=HELLO)
    assert raised.value.status_code == status
    assert message in raised.value.message
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "1"


@pytest.mark.anyio
async def test_e2e_upstream_validation_error_keeps_message(client: openai.AsyncOpenAI) -> None:
    dangling = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "toolu_x", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "well?"},
    ]
    with pytest.raises(openai.BadRequestError, match="without `tool_result` blocks"):
        await client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=dangling, tools=[WEATHER])


@pytest.mark.anyio
async def test_e2e_mid_stream_error(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="anthropic/claude-haiku-4-5-fake-stream-error", messages=HELLO, stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for _ in stream:
            pass
