"""The Gemini adapter: SDK fidelity of the fake, golden request bodies, response/stream translation, and the
whole path through a real gateway with the openai SDK as the client."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from providers.gemini import GeminiAdapter, schema_for_gemini, usage_from
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.gemini_upstream import SKIP_SIGNATURE, FakeGemini, signature_for
from tests.fakes.openai_upstream import embedding_for

BASE = "https://generativelanguage.googleapis.com/v1beta"
KEY = "AIza-test-key"
ADAPTER = GeminiAdapter()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def sdk_client(fake: FakeGemini, key: str | None = None) -> genai.Client:
    options = genai_types.HttpOptions(base_url=fake.root_url, api_version="v1beta")
    return genai.Client(api_key=key or fake.api_key, http_options=options)


def make_call(
    body: dict[str, Any],
    *,
    model: str = "gemini-2.5-flash",
    stream: bool = False,
    endpoint: str = "chat",
    wants_usage: bool = False,
) -> UpstreamCall:
    spec = ProviderSpec(id="gemini", adapter="gemini", base_url=BASE, api_key=KEY)
    return UpstreamCall(
        endpoint=endpoint,  # type: ignore[arg-type]
        provider=spec,
        model=model,
        body=body,
        raw=orjson.dumps(body),
        stream=stream,
        client_wants_usage=wants_usage,
    )


def sent(body: dict[str, Any], **kwargs: Any) -> Any:
    return orjson.loads(ADAPTER.build_request(make_call(body, **kwargs)).body)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["C", "F"]}},
            "required": ["city", "ghost"],
            "additionalProperties": False,
        },
    },
}

# ---------------------------------------------------------------------------------------- a. SDK fidelity


def test_sdk_plain_generate(fake: FakeGemini) -> None:
    client = sdk_client(fake)
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello there",
        config=genai_types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=50),
    )
    assert response.text == "fake reply to: hello there"
    assert response.candidates and response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 2 + 2 + 3  # user words + system words + 3 per content
    assert response.usage_metadata.candidates_token_count == 5
    assert response.model_version == "gemini-2.5-flash"
    request = fake.last_request
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.header("x-goog-api-key") == fake.api_key
    assert "key" not in request.query


def test_sdk_streaming(fake: FakeGemini) -> None:
    client = sdk_client(fake)  # keep a reference: a collected client closes its connection pool
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello stream"))
    assert [c.text for c in chunks] == ["fake", " reply", " to:", " hello", " stream"]
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.candidates_token_count == 5
    assert fake.last_request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert fake.last_request.query == {"alt": "sse"}


def test_sdk_parallel_tools_and_thought_signature_round_trip(fake: FakeGemini) -> None:
    client = sdk_client(fake)
    declarations = [
        genai_types.FunctionDeclaration(
            name=name,
            description="tool",
            parameters=genai_types.Schema(
                type=genai_types.Type.OBJECT, properties={"input": genai_types.Schema(type=genai_types.Type.STRING)}
            ),
        )
        for name in ("alpha", "beta")
    ]
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(function_declarations=declarations)],
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = client.models.generate_content(model="gemini-3.8-flash", contents="call tool parallel", config=config)
    assert first.function_calls is not None
    assert [(c.name, c.args) for c in first.function_calls] == [
        ("alpha", {"input": "call tool parallel"}),
        ("beta", {"input": "call tool parallel"}),
    ]
    assert first.candidates and first.candidates[0].content
    model_turn = first.candidates[0].content
    assert model_turn.parts and model_turn.parts[0].thought_signature  # bytes: the SDK decodes the base64
    responses = [
        genai_types.Part.from_function_response(name=name, response={"ok": name}) for name in ("alpha", "beta")
    ]
    history = [
        genai_types.Content(role="user", parts=[genai_types.Part(text="call tool parallel")]),
        model_turn,
        genai_types.Content(role="user", parts=responses),
    ]
    final = client.models.generate_content(model="gemini-3.8-flash", contents=history, config=config)
    assert final.text == 'fake reply to tool results: alpha returned {"ok":"alpha"}; beta returned {"ok":"beta"}'
    # Without the signature the fake refuses, as the real API does for Gemini 3.
    model_turn.parts[0].thought_signature = None
    with pytest.raises(genai_errors.ClientError) as refused:
        client.models.generate_content(model="gemini-3.8-flash", contents=history, config=config)
    assert refused.value.code == 400
    assert "missing a thought_signature" in str(refused.value.message)


def test_sdk_errors(fake: FakeGemini) -> None:
    client = sdk_client(fake)
    with pytest.raises(genai_errors.ClientError) as limited:
        client.models.generate_content(model="fake-status-429", contents="x")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    with pytest.raises(genai_errors.ServerError) as failed:
        client.models.generate_content(model="fake-status-500", contents="x")
    assert (failed.value.code, failed.value.status) == (500, "INTERNAL")
    with pytest.raises(genai_errors.ClientError) as missing:
        client.models.generate_content(model="gemini-0-nope", contents="x")
    assert missing.value.code == 404 and "models/gemini-0-nope is not found" in str(missing.value.message)
    wrong = sdk_client(fake, key="AIza-wrong")
    with pytest.raises(genai_errors.ClientError) as bad_key:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert (bad_key.value.code, bad_key.value.message) == (400, "API key not valid. Please pass a valid API key.")


def test_sdk_embeddings(fake: FakeGemini) -> None:
    client = sdk_client(fake)
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["first text", "second"],
        config=genai_types.EmbedContentConfig(output_dimensionality=4),
    )
    assert result.embeddings is not None
    assert [e.values for e in result.embeddings] == [
        embedding_for("first text", model="gemini-embedding-001", dims=4),
        embedding_for("second", model="gemini-embedding-001", dims=4),
    ]
    assert fake.last_request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"


@pytest.mark.anyio
async def test_sdk_async_streaming(fake: FakeGemini) -> None:
    client = sdk_client(fake)
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="async hi")
    texts = [chunk.text async for chunk in stream]
    assert "".join(t or "" for t in texts) == "fake reply to: async hi"


# --------------------------------------------------------------------------------- b. golden request bodies


def test_golden_plain_request() -> None:
    body = {
        "model": "gemini/gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello", "name": "ignored"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]},
        ],
        "max_completion_tokens": 100,
        "max_tokens": 5,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "n": 1,
        "user": "u-1",
        "logit_bias": {"1": 2},
        "parallel_tool_calls": True,
    }
    request = ADAPTER.build_request(make_call(body))
    assert request.method == "POST"
    assert request.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert request.headers == {"content-type": "application/json", "x-goog-api-key": KEY}
    assert KEY not in request.url
    assert request.stream is False and request.provider_id == "gemini"
    assert orjson.loads(request.body) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Bonjour"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]},
        "generationConfig": {
            "maxOutputTokens": 100,
            "temperature": 0.2,
            "topP": 0.9,
            "seed": 7,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.3,
            "stopSequences": ["END"],
        },
    }


def test_golden_stream_request() -> None:
    request = ADAPTER.build_request(
        make_call({"messages": [{"role": "user", "content": "hi"}], "stream": True}, stream=True)
    )
    assert request.url == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert request.headers == {"content-type": "application/json", "x-goog-api-key": KEY, "accept": "text/event-stream"}
    assert request.stream is True
    assert orjson.loads(request.body) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_golden_tools_and_tool_choice() -> None:
    base = {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER_TOOL, {"type": "web_search"}]}
    declaration = {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING"},
                "unit": {"type": "STRING", "nullable": True, "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    }
    assert sent(base) == {
        "contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [declaration]}],
    }
    choices = {
        "auto": {"mode": "AUTO"},
        "none": {"mode": "NONE"},
        "required": {"mode": "ANY"},
    }
    for choice, config in choices.items():
        assert sent({**base, "tool_choice": choice})["toolConfig"] == {"functionCallingConfig": config}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert sent({**base, "tool_choice": named})["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    no_params = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    assert sent({**base, "tools": [no_params]})["tools"] == [{"functionDeclarations": [{"name": "now"}]}]
    assert "toolConfig" not in sent({"messages": base["messages"], "tool_choice": "required"})


def test_golden_tool_round_trip_history() -> None:
    signed_id = "call_0_abc__ts_c2lnbmF0dXJl+/=="
    body = {
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": signed_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "call_1_def", "type": "function", "function": {"name": "get_time", "arguments": "[1]"}},
                ],
            },
            {"role": "tool", "tool_call_id": signed_id, "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_1_def", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "thanks"},
        ]
    }
    expected_contents = [
        {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2lnbmF0dXJl+/==",
                },
                {"functionCall": {"name": "get_time", "args": {"arguments": [1]}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]
    assert sent(body, model="gemini-3.8-flash")["contents"] == expected_contents
    # A Gemini 3 history whose first call lost its signature gets Google's documented stand-in; 2.x gets none.
    unsigned = orjson.loads(orjson.dumps(body).replace(signed_id.encode(), b"call_0_abc"))
    gemini3 = sent(unsigned, model="gemini-3.8-flash")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in gemini3] == [SKIP_SIGNATURE, None]
    legacy = sent(unsigned, model="gemini-2.5-flash")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in legacy] == [None, None]


def test_golden_multimodal_parts() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/blob"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                ],
            }
        ]
    }
    assert sent(body)["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg?size=2", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/blob"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


def test_golden_response_format_and_reasoning() -> None:
    messages = [{"role": "user", "content": "json please"}]
    assert sent({"messages": messages, "response_format": {"type": "json_object"}})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    schema = {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}, "required": ["n"]}
    with_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    assert sent({"messages": messages, "response_format": with_schema})["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"n": {"type": "INTEGER", "format": "int32"}},
            "required": ["n"],
        },
    }
    assert "generationConfig" not in sent({"messages": messages, "response_format": {"type": "text"}})
    effort = {"messages": messages, "reasoning_effort": "medium"}
    assert sent(effort, model="gemini-3.8-flash")["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "medium", "includeThoughts": True}
    }
    assert sent(effort, model="gemini-2.5-flash")["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}
    }
    low = {"messages": messages, "reasoning_effort": "minimal"}
    assert sent(low, model="gemini-2.5-flash")["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0,
        "includeThoughts": False,
    }
    assert sent(low, model="gemini-2.5-pro")["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 128
    assert sent(low, model="gemini-3.8-flash")["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "low",
        "includeThoughts": False,
    }
    explicit_none = {"messages": messages, "max_completion_tokens": None, "max_tokens": 9}
    assert sent(explicit_none)["generationConfig"] == {"maxOutputTokens": 9}


def test_golden_embeddings_request() -> None:
    call = make_call(
        {"model": "gemini/gemini-embedding-001", "input": ["a b", "c"], "dimensions": 4},
        model="gemini-embedding-001",
        endpoint="embeddings",
    )
    request = ADAPTER.build_request(call)
    assert request.url == f"{BASE}/models/gemini-embedding-001:batchEmbedContents"
    assert request.headers["x-goog-api-key"] == KEY
    assert orjson.loads(request.body) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "a b"}]},
                "outputDimensionality": 4,
            },
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 4},
        ]
    }
    single = sent({"input": "one"}, model="gemini-embedding-001", endpoint="embeddings")
    assert single == {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}}]}
    tokens = sent({"input": [1, 2, 3]}, model="gemini-embedding-001", endpoint="embeddings")
    assert tokens["requests"][0]["content"] == {"parts": [{"text": "1 2 3"}]}


def test_schema_conversion() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "additionalProperties": False}},
        "type": "object",
        "properties": {
            "where": {"$ref": "#/$defs/Point", "description": "a point"},
            "kind": {"const": "fixed"},
            "size": {"type": "integer", "enum": [1, 2], "exclusiveMinimum": 0},
            "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "maybe": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]},
            "many": {"type": ["string", "integer", "null"]},
            "free": {"type": "object", "properties": {}},
        },
    }
    assert schema_for_gemini(schema) == {
        "type": "OBJECT",
        "properties": {
            "where": {"type": "OBJECT", "description": "a point", "properties": {"x": {"type": "NUMBER"}}},
            "kind": {"type": "STRING", "enum": ["fixed"]},
            "size": {"type": "INTEGER"},
            "tags": {"type": "ARRAY", "minItems": 1, "items": {"type": "STRING"}},
            "either": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
            "maybe": {"nullable": True, "type": "STRING", "format": "date-time"},
            "both": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
            "many": {"nullable": True, "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
            "free": {"type": "OBJECT"},
        },
    }
    recursive = {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}
    assert schema_for_gemini(recursive)["type"] == "OBJECT"  # terminates


def test_fake_accepts_every_golden_body(fake: FakeGemini) -> None:
    """What the adapter sends passes the fake's real-API validation (unknown keys, roles, signatures)."""
    bodies: list[tuple[dict[str, Any], str]] = [
        (
            {
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
                "tools": [WEATHER_TOOL],
            },
            "gemini-2.5-flash",
        ),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "n", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
            },
            "gemini-2.5-flash",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}, "gemini-4-argon"),
    ]
    for body, model in bodies:
        request = ADAPTER.build_request(make_call(body, model=model))
        url = request.url.replace(BASE, fake.base_url)
        headers = {**request.headers, "x-goog-api-key": fake.api_key}
        answer = httpx.post(url, content=request.body, headers=headers)
        assert answer.status_code == 200, answer.text


# --------------------------------------------------------------------------- b. response translation (unit)


def parse(data: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], Usage]:
    call = make_call({"messages": [{"role": "user", "content": "q"}]}, **kwargs)
    parsed = ADAPTER.parse_response(call, UpstreamResponse(status=200, headers={}, body=orjson.dumps(data)))
    return orjson.loads(parsed.body), parsed.usage


USAGE = {
    "promptTokenCount": 100,
    "cachedContentTokenCount": 40,
    "toolUsePromptTokenCount": 5,
    "candidatesTokenCount": 20,
    "thoughtsTokenCount": 7,
    "totalTokenCount": 132,
}


def test_parse_text_thoughts_and_usage() -> None:
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "let me think", "thought": True},
                        {"text": "Hello "},
                        {"text": "world", "thoughtSignature": "x"},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp123",
    }
    body, usage = parse(data)
    assert usage == Usage(prompt_tokens=105, completion_tokens=27, cached_tokens=40, reasoning_tokens=7)
    assert body["id"] == "chatcmpl-resp123"
    assert body["object"] == "chat.completion"
    assert body["model"] == "gemini-2.5-flash"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello world",
                "refusal": None,
                "reasoning_content": "let me think",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 105,
        "completion_tokens": 27,
        "total_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }


def test_parse_parallel_function_calls() -> None:
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "SIG=="},
                        {"functionCall": {"name": "b", "args": {}}},
                        {"functionCall": {"name": "c", "args": {"y": "z"}, "id": "given-id"}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "responseId": "r1",
    }
    body, _ = parse(data)
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    calls = message["tool_calls"]
    assert [c["function"] for c in calls] == [
        {"name": "a", "arguments": '{"x":1}'},
        {"name": "b", "arguments": "{}"},
        {"name": "c", "arguments": '{"y":"z"}'},
    ]
    assert calls[0]["id"].startswith("call_0_") and calls[0]["id"].endswith("__ts_SIG==")
    assert calls[1]["id"].startswith("call_1_") and "__ts_" not in calls[1]["id"]
    assert calls[2]["id"] == "given-id"
    assert parse(data)[0]["choices"][0]["message"]["tool_calls"] == calls  # stable ids


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("CONTINUATION", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        (None, "stop"),
    ],
)
def test_parse_finish_reasons(reason: str | None, expected: str) -> None:
    candidate: dict[str, Any] = {"index": 0}
    if reason:
        candidate["finishReason"] = reason
    body, _ = parse({"candidates": [candidate]})
    assert body["choices"][0]["finish_reason"] == expected
    assert body["choices"][0]["message"]["content"] == ""


def test_parse_blocked_prompt() -> None:
    data = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    body, usage = parse(data)
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == ""
    assert usage == Usage(prompt_tokens=9)


def test_usage_from_handles_missing_fields() -> None:
    assert usage_from(None) == Usage()
    assert usage_from({"promptTokenCount": 3}) == Usage(prompt_tokens=3)


def test_parse_embeddings() -> None:
    data = {"embeddings": [{"values": [0.5, -0.25]}, {"values": [1.0, 0.0]}]}
    body = {"model": "gemini-embedding-001", "input": ["abcdefgh", "xyz"]}
    call = make_call(body, model="gemini-embedding-001", endpoint="embeddings")
    parsed = ADAPTER.parse_response(call, UpstreamResponse(status=200, headers={}, body=orjson.dumps(data)))
    assert parsed.usage == Usage(prompt_tokens=2 + 1)  # estimated: ceil(chars / 4) per input
    assert orjson.loads(parsed.body) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]},
        ],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    reported = {**data, "usageMetadata": {"promptTokenCount": 11}}
    base64_call = make_call({**body, "encoding_format": "base64"}, model="gemini-embedding-001", endpoint="embeddings")
    parsed = ADAPTER.parse_response(base64_call, UpstreamResponse(status=200, headers={}, body=orjson.dumps(reported)))
    assert parsed.usage == Usage(prompt_tokens=11)
    first = orjson.loads(parsed.body)["data"][0]["embedding"]
    assert list(struct.unpack("<2f", base64.b64decode(first))) == [0.5, -0.25]


def test_error_message() -> None:
    def message(body: bytes, status: int = 400) -> str:
        return ADAPTER.error_message(UpstreamResponse(status=status, headers={}, body=body))

    google = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
    }
    assert message(orjson.dumps(google)) == "API key not valid. Please pass a valid API key."
    assert message(orjson.dumps([google])) == "API key not valid. Please pass a valid API key."
    limited = {
        "error": {
            "code": 429,
            "message": "Quota exceeded.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    assert message(orjson.dumps(limited), 429) == "Quota exceeded. (retry after 37s)"
    assert message(b"<html>Error 404 (Not Found)</html>", 404) == "<html>Error 404 (Not Found)</html>"
    assert message(b"", 502) == "HTTP 502"


# ----------------------------------------------------------------------------- b. stream translation (unit)


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


def summarize(chunks: list[bytes]) -> dict[str, Any]:
    """The canonical stream's meaning: role, text, reasoning, tool calls, finish, usage, [DONE]."""
    text = b"".join(chunks)
    assert text.endswith(b"data: [DONE]\n\n") or b'"error"' in text
    out: dict[str, Any] = {"content": "", "reasoning": "", "calls": {}, "finish": [], "usage": None, "errors": []}
    for event in text.split(b"\n\n"):
        if not event or event == b"data: [DONE]":
            continue
        assert event.startswith(b"data: ")
        data = orjson.loads(event[6:])
        if "error" in data:
            out["errors"].append(data["error"])
            continue
        if data.get("usage"):
            out["usage"] = data["usage"]
        for choice in data["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or ():
                slot = out["calls"].setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += call.get("function", {}).get("name") or ""
                slot["arguments"] += call.get("function", {}).get("arguments") or ""
            if choice["finish_reason"]:
                out["finish"].append(choice["finish_reason"])
    return out


def run_stream(raw: bytes, pieces: list[int], *, wants_usage: bool = True) -> tuple[list[bytes], Usage]:
    translator = ADAPTER.stream(make_call({"messages": []}, stream=True, wants_usage=wants_usage))
    out: list[bytes] = []
    start = 0
    for end in [*pieces, len(raw)]:
        out.extend(translator.feed(raw[start:end]))
        start = end
    out.extend(translator.finish())
    return out, translator.usage


def splits(raw: bytes) -> Iterator[list[int]]:
    yield []
    yield list(range(1, len(raw)))  # one byte at a time
    for at in range(1, len(raw)):
        yield [at]


TEXT_STREAM = sse(
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "pondering", "thought": True}, {"text": "Hel"}]},
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
        "responseId": "abc",
    },
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo, wörld"}]}, "index": 0}], "responseId": "abc"},
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 16,
        },
        "responseId": "abc",
    },
)


def test_stream_text_at_every_split() -> None:
    expected_usage = {
        "prompt_tokens": 10,
        "completion_tokens": 6,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    for pieces in splits(TEXT_STREAM):
        chunks, usage = run_stream(TEXT_STREAM, pieces)
        summary = summarize(chunks)
        assert summary["content"] == "Hello, wörld!"
        assert summary["reasoning"] == "pondering"
        assert summary["finish"] == ["stop"]
        assert summary["usage"] == expected_usage
        assert usage == Usage(prompt_tokens=10, completion_tokens=6, reasoning_tokens=2)
    chunks, _ = run_stream(TEXT_STREAM, [])
    first = orjson.loads(chunks[0][6:])
    assert first["id"] == "chatcmpl-abc" and first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len([c for c in chunks if b'"content":"' in c]) >= 3  # incremental, not one burst


def test_stream_without_usage_request_hides_usage_chunk() -> None:
    chunks, usage = run_stream(TEXT_STREAM, [], wants_usage=False)
    assert summarize(chunks)["usage"] is None
    assert usage.completion_tokens == 6


TOOL_STREAM = sse(
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "a", "args": {"q": "x"}}, "thoughtSignature": "S1"}],
                }
            }
        ],
        "responseId": "t1",
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"functionCall": {"name": "b", "args": {}}}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "responseId": "t1",
    },
)


def test_stream_tool_calls_at_every_split() -> None:
    whole, _ = parse(orjson.loads(TOOL_STREAM.split(b"\r\n\r\n")[0][6:]))
    for pieces in splits(TOOL_STREAM):
        summary = summarize(run_stream(TOOL_STREAM, pieces)[0])
        assert summary["finish"] == ["tool_calls"]
        assert [(c["name"], c["arguments"]) for c in summary["calls"].values()] == [("a", '{"q":"x"}'), ("b", "{}")]
        assert summary["calls"][0]["id"] == whole["choices"][0]["message"]["tool_calls"][0]["id"]
        assert summary["calls"][0]["id"].endswith("__ts_S1")


def test_stream_blocked_error_and_truncated() -> None:
    blocked = sse({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}})
    summary = summarize(run_stream(blocked, [])[0])
    assert (summary["content"], summary["finish"]) == ("", ["content_filter"])
    error = sse({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}) + sse(
        {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
    )
    chunks, _ = run_stream(error, [5])
    summary = summarize(chunks)
    assert summary["content"] == "Hi" and summary["finish"] == []
    assert summary["errors"] == [
        {"message": "An internal error has occurred.", "type": "upstream_error", "param": None, "code": "internal"}
    ]
    bare = b'[{\n  "error": {\n    "code": 503,\n    "message": "overloaded",\n    "status": "UNAVAILABLE"\n  }\n}\n]'
    assert summarize(run_stream(bare, [])[0])["errors"][0]["message"] == "overloaded"
    cut = sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]})[:-2]  # no finishReason, no blank line
    summary = summarize(run_stream(cut, [])[0])
    assert (summary["content"], summary["finish"]) == ("partial", ["stop"])
    empty = summarize(run_stream(b"", [])[0])
    assert (empty["content"], empty["finish"]) == ("", ["stop"])


# ------------------------------------------------------------------------------- c. through a real gateway


@pytest.fixture(scope="module")
def gateway(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("gemini-gateway"),
        providers={"gemini": {"base_url": fake.base_url}},
        env={"GEMINI_API_KEY": fake.api_key},
        config={"upstream": {"timeout": 2}},
    ) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up",
            "parameters": {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "clock",
            "description": "The time",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    },
]


@pytest.mark.anyio
async def test_e2e_plain_chat_usage_and_log(client: openai.AsyncOpenAI, gateway: Gateway, fake: FakeGemini) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini/gemini-2.5-flash",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello gateway"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake reply to: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gemini-2.5-flash"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2 + 2 + 3, 5)
    upstream = fake.last_request
    assert upstream.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert upstream.header("x-goog-api-key") == fake.api_key and not upstream.query
    assert upstream.json["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model, row.status) == ("gemini", "gemini-2.5-flash", "ok")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 5)
    assert row.cost_nano > 0 and row.price_source and row.price_source.startswith("genai-prices")


@pytest.mark.anyio
async def test_e2e_streaming_with_usage(client: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini/gemini-2.5-flash",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    stream = raw.parse()
    contents: list[str] = []
    finishes: list[str] = []
    usage = None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                contents.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert "".join(contents) == "fake reply to: stream me please"
    assert len(contents) >= 5
    assert finishes == ["stop"]
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (6, 6)
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.stream, row.prompt_tokens, row.completion_tokens) == (True, 6, 6)
    assert row.cost_nano > 0


@pytest.mark.anyio
async def test_e2e_stream_without_usage_request(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "quiet"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake reply to: quiet"


@pytest.mark.anyio
async def test_e2e_tool_round_trip(client: openai.AsyncOpenAI, fake: FakeGemini, gateway: Gateway) -> None:
    """Gemini 3 model: the thought signature must survive the round trip through the client's tool call id."""
    messages: list[Any] = [{"role": "user", "content": "please call tool lookup"}]
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini/gemini-3.8-flash", messages=messages, tools=TOOLS
    )
    first = raw.parse()
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert (call.function.name, orjson.loads(call.function.arguments)) == (
        "lookup",
        {"input": "please call tool lookup"},
    )
    assert call.id.endswith("__ts_" + signature_for("lookup", {"input": "please call tool lookup"}))
    sent_tools = fake.last_request.json["tools"][0]["functionDeclarations"]
    assert "additionalProperties" not in sent_tools[0]["parameters"]
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert row.completion_tokens == len(f"lookup {call.function.arguments}".split())
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"answer": 42}'},
    ]
    final = await client.chat.completions.create(model="gemini/gemini-3.8-flash", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == 'fake reply to tool results: lookup returned {"answer":42}'
    assert final.choices[0].finish_reason == "stop"
    replayed = fake.last_request.json["contents"]
    assert replayed[1]["parts"][0]["thoughtSignature"] == signature_for("lookup", {"input": "please call tool lookup"})
    assert replayed[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "lookup", "response": {"answer": 42}}}],
    }


@pytest.mark.anyio
async def test_e2e_streamed_parallel_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    """Gemini sends each call whole: one tool_call chunk per call, full arguments in it (no argument deltas)."""
    messages: list[Any] = [{"role": "user", "content": "call tool parallel now"}]
    stream = await client.chat.completions.create(
        model="gemini/gemini-3.8-flash", messages=messages, tools=TOOLS, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    tool_chunks = 0
    finishes = []
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                tool_chunks += 1
                slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += (delta.function.name if delta.function else None) or ""
                slot["arguments"] += (delta.function.arguments if delta.function else None) or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert finishes == ["tool_calls"]
    assert tool_chunks == 2  # two calls, each in its own chunk with complete arguments
    assert [(c["name"], orjson.loads(c["arguments"])) for c in calls.values()] == [
        ("lookup", {"input": "call tool parallel now"}),
        ("clock", {"input": "call tool parallel now"}),
    ]
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()
        ],
    }
    messages += [assistant] + [
        {"role": "tool", "tool_call_id": c["id"], "content": f"{c['name']} done"} for c in calls.values()
    ]
    stream = await client.chat.completions.create(
        model="gemini/gemini-3.8-flash", messages=messages, tools=TOOLS, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    said = 'lookup returned {"result":"lookup done"}; clock returned {"result":"clock done"}'
    assert text == f"fake reply to tool results: {said}"


@pytest.mark.anyio
async def test_e2e_tool_choice(client: openai.AsyncOpenAI, fake: FakeGemini) -> None:
    forced = await client.chat.completions.create(
        model="gemini/gemini-2.5-flash",
        messages=[{"role": "user", "content": "no magic words"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "clock"}},
    )
    assert fake.last_request.json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["clock"]}
    }
    forced_calls = forced.choices[0].message.model_dump()["tool_calls"]
    assert [c["function"]["name"] for c in forced_calls] == ["clock"]
    refused = await client.chat.completions.create(
        model="gemini/gemini-2.5-flash",
        messages=[{"role": "user", "content": "call tool anyway"}],
        tools=TOOLS,
        tool_choice="none",
    )
    assert refused.choices[0].finish_reason == "stop" and not refused.choices[0].message.tool_calls


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "extra", "finish", "content"),
    [
        ("gemini/gemini-2.5-flash", {}, "stop", "fake reply to: finish check"),
        ("gemini/gemini-2.5-flash", {"max_tokens": 2}, "length", "fake reply"),
        ("gemini/gemini-2.5-flash", {"stop": ["check"]}, "stop", "fake reply to: finish"),
        ("gemini/fake-finish-safety", {}, "content_filter", ""),
        ("gemini/fake-blocked", {}, "content_filter", ""),
    ],
)
async def test_e2e_finish_reasons(
    client: openai.AsyncOpenAI, model: str, extra: dict[str, Any], finish: str, content: str
) -> None:
    messages: Any = [{"role": "user", "content": "finish check"}]
    plain = await client.chat.completions.create(model=model, messages=messages, **extra)
    assert (plain.choices[0].finish_reason, plain.choices[0].message.content) == (finish, content)
    stream = await client.chat.completions.create(model=model, messages=messages, stream=True, **extra)
    chunks = [c async for c in stream]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [finish]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content


@pytest.mark.anyio
async def test_e2e_reasoning_and_cached_usage(client: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "think hard"}], reasoning_effort="low"
    )
    completion = raw.parse()
    message = completion.choices[0].message.model_dump()
    assert message["reasoning_content"] == "thinking about: think hard"
    assert completion.usage and completion.usage.completion_tokens_details
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    assert completion.usage.completion_tokens == 5 + 4
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.reasoning_tokens, row.completion_tokens) == (4, 9)
    cached = await client.chat.completions.create(
        model="gemini/fake-cached-3", messages=[{"role": "user", "content": "cache me"}]
    )
    assert cached.usage and cached.usage.prompt_tokens_details
    assert cached.usage.prompt_tokens_details.cached_tokens == 3


@pytest.mark.anyio
async def test_e2e_embeddings(client: openai.AsyncOpenAI, gateway: Gateway, fake: FakeGemini) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model="gemini/gemini-embedding-001", input=["embed this text", "and this"], dimensions=4
    )
    result = raw.parse()
    expected = [embedding_for(t, model="gemini-embedding-001", dims=4) for t in ("embed this text", "and this")]
    assert [pytest.approx(d.embedding) for d in result.data] == expected
    assert result.usage.prompt_tokens == (15 + 3) // 4 + (8 + 3) // 4
    assert fake.last_request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.prompt_tokens) == ("gemini", result.usage.prompt_tokens)
    assert row.cost_nano > 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "error", "status", "needle"),
    [
        ("gemini/fake-status-400", openai.BadRequestError, 400, "Request contains an invalid argument."),
        ("gemini/fake-status-401", openai.AuthenticationError, 401, "invalid authentication credentials"),
        ("gemini/gemini-0-missing", openai.NotFoundError, 404, "models/gemini-0-missing is not found"),
        ("gemini/fake-status-429", openai.RateLimitError, 429, "(retry after 1s)"),
        ("gemini/fake-status-500", openai.InternalServerError, 502, "Provider 'gemini' failed with HTTP 500"),
        ("gemini/fake-delay-3", openai.APIStatusError, 504, "timed out"),
    ],
)
async def test_e2e_errors(
    client: openai.AsyncOpenAI, gateway: Gateway, model: str, error: type[Exception], status: int, needle: str
) -> None:
    with pytest.raises(error) as caught:
        await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status
    assert needle in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
    row = await gateway.log_row(caught.value.response.headers["alephant-request-id"])
    assert row.provider == "gemini" and row.http_status == status


@pytest.mark.anyio
async def test_e2e_wrong_upstream_key(fake: FakeGemini, tmp_path: Path) -> None:
    """Google answers a bad API key with 400 API_KEY_INVALID (not 401); the gateway relays it as is."""
    with running_gateway(
        tmp_path, providers={"gemini": {"base_url": fake.base_url}}, env={"GEMINI_API_KEY": "AIza-bad"}
    ) as gw:
        sdk = openai.AsyncOpenAI(base_url=gw.api_url, api_key=MASTER_KEY, max_retries=0)
        try:
            with pytest.raises(openai.BadRequestError) as caught:
                await sdk.chat.completions.create(
                    model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
                )
        finally:
            await sdk.close()
    assert caught.value.status_code == 400
    assert caught.value.message.endswith("API key not valid. Please pass a valid API key.")
    assert "AIza-bad" not in str(caught.value.response.text)


@pytest.mark.anyio
async def test_e2e_mid_stream_error(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gemini/fake-stream-error", messages=[{"role": "user", "content": "boom soon"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert "internal error" in caught.value.message
