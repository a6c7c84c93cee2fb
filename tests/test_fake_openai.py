"""Fidelity tests for the fake OpenAI upstream.

Why: every gateway test that uses ``FakeOpenAI`` trusts it to speak OpenAI's real wire protocol. If
the fake drifted (wrong field names, usage chunk in the wrong place, wrong error shape), gateway
tests would pass against a protocol no real provider speaks. So here the *official* ``openai`` SDK,
sync and async, is pointed at the fake and must parse everything into its typed objects and raise
its typed exceptions; a few raw-HTTP checks cover what the SDK hides (SSE framing, ``usage: null``).
"""

from __future__ import annotations

import base64
import itertools
import math
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.openai_upstream import (
    EMBEDDING_DIMS,
    MAX_ECHO_WORDS,
    FakeOpenAI,
    embedding_for,
    resolve_faults,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
USER_TEXT = "hello there world"
EXPECTED_REPLY = "fake reply to: hello there world"
MESSAGES: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": USER_TEXT},
]
# 2 + 3 words of text, plus 3 tokens of overhead per message; the reply has 6 words.
EXPECTED_PROMPT_TOKENS = 2 + 3 + 3 * 2
EXPECTED_COMPLETION_TOKENS = 6
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> FakeOpenAI:
    """The shared server with an empty request log, so each test sees only its own requests."""
    fake_server.clear()
    fake_server.chunk_delay = 0.0
    return fake_server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0) as sdk:
        yield sdk


def _raw_sse_events(fake: FakeOpenAI, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[bytes]:
    """POST a streaming request with plain httpx and return the ``data:`` payloads as sent."""
    all_headers = {"Authorization": f"Bearer {fake.api_key}", **(headers or {})}
    with (
        httpx.Client() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=body, headers=all_headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert all(e.startswith(b"data: ") for e in events[:-1])
    return [e.removeprefix(b"data: ") for e in events[:-1]]


# --------------------------------------------------------------------------- chat, sync SDK


def test_chat_completion_parses_into_typed_objects_with_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    assert abs(completion.created - time.time()) < 60
    [choice] = completion.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == EXPECTED_REPLY
    assert choice.message.refusal is None
    assert choice.message.tool_calls is None
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == EXPECTED_PROMPT_TOKENS
    assert usage.completion_tokens == EXPECTED_COMPLETION_TOKENS
    assert usage.total_tokens == EXPECTED_PROMPT_TOKENS + EXPECTED_COMPLETION_TOKENS
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_reply_echo_is_truncated_and_content_parts_are_read(client: openai.OpenAI) -> None:
    long_text = " ".join(f"w{i}" for i in range(100))
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": [{"type": "text", "text": long_text}]}],
    )
    content = completion.choices[0].message.content
    assert content == "fake reply to: " + " ".join(f"w{i}" for i in range(MAX_ECHO_WORDS))
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 100 + 3
    assert completion.usage.completion_tokens == 3 + MAX_ECHO_WORDS


def test_max_tokens_cuts_reply_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=2)
    assert completion.choices[0].message.content == "fake reply"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


def test_streaming_yields_words_without_usage_by_default(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks)
    first, *middle, last = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == [
        "fake",
        " reply",
        " to:",
        " hello",
        " there",
        " world",
    ]
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.content is None
    assert fake.last_request.json["stream"] is True


def test_streaming_include_usage_adds_final_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    *content_chunks, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.prompt_tokens == EXPECTED_PROMPT_TOKENS
    assert usage_chunk.usage.completion_tokens == EXPECTED_COMPLETION_TOKENS
    assert usage_chunk.usage.total_tokens == EXPECTED_PROMPT_TOKENS + EXPECTED_COMPLETION_TOKENS
    assert all(c.usage is None for c in content_chunks)
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert text == EXPECTED_REPLY


def test_raw_sse_usage_null_on_every_chunk_only_with_include_usage(fake: FakeOpenAI) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}

    plain = [orjson.loads(e) for e in _raw_sse_events(fake, body)[:-1]]
    assert all("usage" not in c for c in plain)
    assert len(plain) == 1 + EXPECTED_COMPLETION_TOKENS + 1

    with_usage = [
        orjson.loads(e) for e in _raw_sse_events(fake, {**body, "stream_options": {"include_usage": True}})[:-1]
    ]
    assert len(with_usage) == len(plain) + 1
    assert all("usage" in c and c["usage"] is None for c in with_usage[:-1])
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"]["total_tokens"] == EXPECTED_PROMPT_TOKENS + EXPECTED_COMPLETION_TOKENS
    assert with_usage[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_stream_chunks_are_flushed_one_at_a_time(fake: FakeOpenAI) -> None:
    """With a per-chunk delay the events must arrive spread out, not as one buffered body."""
    delay = 0.05
    arrivals: list[float] = []
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {fake.api_key}", "x-fake-chunk-delay": str(delay)}
    with (
        httpx.Client() as http,
        http.stream("POST", f"{fake.base_url}/chat/completions", json=body, headers=headers) as resp,
    ):
        for line in resp.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    expected_events = 1 + EXPECTED_COMPLETION_TOKENS + 1 + 1  # role, words, finish, [DONE]
    assert len(arrivals) == expected_events
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap >= delay * 0.5 for gap in gaps), gaps


def test_constructor_chunk_delay_applies_to_sdk_streams(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.chunk_delay = 0.03
    started = time.monotonic()
    seen = [c for c in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)]
    assert len(seen) == 8
    assert time.monotonic() - started >= 0.03 * 7


# --------------------------------------------------------------------------- tool calls


def test_tool_call_response_parses_with_tool_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Please call tool for Paris"}],
        tools=TOOLS,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"input": "Please call tool for Paris"}


def test_tool_choice_selects_named_function_and_no_tools_means_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call tool"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None
    assert tool_calls[0].function.name == "get_time"

    plain = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "call tool"}])
    assert plain.choices[0].message.content == "fake reply to: call tool"
    assert plain.choices[0].finish_reason == "stop"


def test_streamed_tool_call_reassembles(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "call tool: weather in Oslo"}],
            tools=TOOLS,
            stream=True,
        )
    )
    first_delta = chunks[0].choices[0].delta
    assert first_delta.role == "assistant"
    assert first_delta.tool_calls is not None
    assert first_delta.tool_calls[0].function is not None
    assert first_delta.tool_calls[0].function.name == "get_weather"
    assert first_delta.tool_calls[0].id is not None
    arguments = "".join(
        (tc.function.arguments or "")
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
        if tc.function is not None
    )
    assert orjson.loads(arguments) == {"input": "call tool: weather in Oslo"}
    assert len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --------------------------------------------------------------------------- embeddings, models


def test_embeddings_sdk_default_base64(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])

    assert fake.last_request.json["encoding_format"] == "base64"
    assert result.object == "list"
    assert result.model == "text-embedding-3-small"
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == embedding_for("one two", model="text-embedding-3-small")
    assert result.data[1].embedding == embedding_for("three", model="text-embedding-3-small")
    assert result.data[0].embedding != result.data[1].embedding
    assert len(result.data[0].embedding) == EMBEDDING_DIMS
    assert math.isclose(math.fsum(v * v for v in result.data[0].embedding), 1.0, rel_tol=1e-5)
    assert result.usage.prompt_tokens == 3
    assert result.usage.total_tokens == 3


def test_embeddings_float_format_matches_base64(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    as_float = client.embeddings.create(
        model="text-embedding-3-small", input="one two", encoding_format="float", dimensions=16
    )
    assert fake.last_request.json["encoding_format"] == "float"
    vector = as_float.data[0].embedding
    assert len(vector) == 16
    assert vector == embedding_for("one two", model="text-embedding-3-small", dims=16)

    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="one two", encoding_format="base64", dimensions=16
    )
    encoded = orjson.loads(raw.content)["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert list(struct.unpack("<16f", base64.b64decode(encoded))) == vector


def test_embeddings_accept_token_arrays(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]])
    assert len(result.data) == 2
    assert result.usage.prompt_tokens == 4


def test_models_list_and_retrieve(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
    assert all(m.object == "model" and m.owned_by for m in models.data)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-99")


def test_custom_models_and_key() -> None:
    with (
        FakeOpenAI(api_key="sk-other", models=["my-model"]) as other,
        openai.OpenAI(base_url=other.base_url, api_key="sk-other", max_retries=0) as sdk,
    ):
        assert [m.id for m in sdk.models.list().data] == ["my-model"]
        assert sdk.chat.completions.create(model="my-model", messages=MESSAGES).model == "my-model"
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


# --------------------------------------------------------------------------- errors and faults


def test_wrong_key_raises_authentication_error(fake: FakeOpenAI) -> None:
    with (
        openai.OpenAI(base_url=fake.base_url, api_key="sk-client-key-not-upstream", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as excinfo,
    ):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert excinfo.value.status_code == 401
    assert excinfo.value.code == "invalid_api_key"
    assert excinfo.value.type == "invalid_request_error"
    assert "sk-client-key-not-upstream" not in str(excinfo.value)  # masked, like OpenAI
    assert fake.last_request.headers["authorization"] == "Bearer sk-client-key-not-upstream"


def test_missing_key_is_401_in_openai_error_shape(fake: FakeOpenAI) -> None:
    resp = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert resp.status_code == 401
    body = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "invalid_api_key"
    assert "didn't provide an API key" in body["error"]["message"]


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert excinfo.value.code == "model_not_found"
    assert "gpt-nope" in excinfo.value.message


def test_injected_429_via_header_raises_rate_limit_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as excinfo:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-status": "429"})
    assert excinfo.value.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "1"
    assert excinfo.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_injected_status_via_model_name(
    fake: FakeOpenAI, client: openai.OpenAI, status: int, exc_type: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exc_type) as excinfo:
        client.chat.completions.create(model=f"fake-status-{status}", messages=MESSAGES)
    assert excinfo.value.status_code == status
    assert fake.last_request.model == f"fake-status-{status}"


def test_injected_status_applies_to_embeddings_too(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input="x", extra_headers={"x-fake-status": "502"})


def test_injected_delay_with_sdk_timeout_raises_timeout(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-delay": "5"}
        )
    assert time.monotonic() - started < 3  # the client gave up; we did not wait for the server
    assert fake.last_request.headers["x-fake-delay"] == "5"


def test_injected_delay_via_model_name_then_answers(client: openai.OpenAI) -> None:
    started = time.monotonic()
    completion = client.chat.completions.create(model="fake-delay-0.3", messages=MESSAGES)
    assert time.monotonic() - started >= 0.3
    assert completion.model == "fake-delay-0.3"
    assert completion.choices[0].message.content == EXPECTED_REPLY


def test_injected_close_raises_connection_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError) as excinfo:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-close": "1"})
    assert not isinstance(excinfo.value, openai.APITimeoutError)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fake-close", messages=MESSAGES)


def test_close_after_drops_stream_midway(client: openai.OpenAI) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-close-after": "3"}
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["", "fake", " reply"]


def test_stream_options_without_stream_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_body={"stream_options": {"include_usage": True}},
        )
    assert excinfo.value.param == "stream_options"


def test_bad_requests_use_openai_error_shape(fake: FakeOpenAI) -> None:
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    not_json = httpx.post(f"{fake.base_url}/chat/completions", content=b"{nope", headers=auth)
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"

    no_messages = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "gpt-4o"}, headers=auth)
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"

    bad_control = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={**auth, "x-fake-status": "teapot"},
    )
    assert bad_control.status_code == 400
    assert "x-fake-status" in bad_control.json()["error"]["message"]

    unknown = httpx.get(f"{fake.base_url}/assistants", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (GET /v1/assistants)"


def test_resolve_faults_combines_model_segments_and_headers_win() -> None:
    faults = resolve_faults({"x-fake-status": "502"}, "fake-delay-0.5-status-503-close-after-2")
    assert faults.status == 502
    assert faults.delay == 0.5
    assert faults.close_after == 2
    assert not faults.close
    assert resolve_faults({}, "gpt-4o-mini-status-503").status is None  # only fake-* names are controls


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded_with_lowercased_headers_and_json(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Custom-Thing": "abc"})
    client.models.list()

    first, second = fake.requests
    assert first.method == "POST"
    assert first.path == "/v1/chat/completions"
    assert first.model == "gpt-4o-mini"
    assert first.json["messages"] == MESSAGES
    assert first.headers["x-custom-thing"] == "abc"
    assert first.header("X-CUSTOM-THING") == "abc"
    assert first.headers["authorization"] == f"Bearer {fake.api_key}"
    assert (second.method, second.path, second.json) == ("GET", "/v1/models", None)
    assert fake.last_request == second

    fake.clear()
    assert fake.requests == []
    with pytest.raises(LookupError):
        _ = fake.last_request


def test_requests_snapshot_is_a_copy(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    snapshot = fake.requests
    client.models.list()
    assert snapshot == []
    assert len(fake.requests) == 1


def test_base_url_requires_running_server() -> None:
    server = FakeOpenAI()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_stop_is_prompt_even_with_a_request_in_flight() -> None:
    server = FakeOpenAI().start()
    with (
        openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=0.2) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="fake-delay-30", messages=MESSAGES)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3


def test_standalone_main_serves() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tests.fakes.openai_upstream",
        "--port",
        str(port),
        "--api-key",
        "sk-demo",
    ]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()  # printed only once the socket is listening
            assert f"http://127.0.0.1:{port}/v1" in banner, banner
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-demo", max_retries=0) as sdk:
                completion = sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            assert completion.choices[0].message.content == EXPECTED_REPLY
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------- async SDK


@pytest.fixture
async def async_client(fake: FakeOpenAI) -> Any:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.mark.anyio
async def test_async_chat_completion(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == EXPECTED_REPLY
    assert completion.usage is not None
    assert completion.usage.total_tokens == EXPECTED_PROMPT_TOKENS + EXPECTED_COMPLETION_TOKENS


@pytest.mark.anyio
async def test_async_streaming_with_and_without_usage(async_client: openai.AsyncOpenAI) -> None:
    plain = [
        c async for c in await async_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    ]
    assert all(c.usage is None for c in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain) == EXPECTED_REPLY

    stream = await async_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    with_usage = [c async for c in stream]
    assert len(with_usage) == len(plain) + 1
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == EXPECTED_COMPLETION_TOKENS


@pytest.mark.anyio
async def test_async_embeddings_and_models(async_client: openai.AsyncOpenAI) -> None:
    default = await async_client.embeddings.create(model="text-embedding-3-small", input="abc")
    as_float = await async_client.embeddings.create(
        model="text-embedding-3-small", input="abc", encoding_format="float"
    )
    assert default.data[0].embedding == as_float.data[0].embedding
    assert default.data[0].embedding == embedding_for("abc", model="text-embedding-3-small")
    models = await async_client.models.list()
    assert "text-embedding-3-small" in [m.id for m in models.data]


@pytest.mark.anyio
async def test_async_errors(fake: FakeOpenAI, async_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await async_client.chat.completions.create(model="gpt-missing", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        await async_client.chat.completions.create(model="fake-status-429", messages=MESSAGES)
    with pytest.raises(openai.APITimeoutError):
        await async_client.with_options(timeout=0.3).chat.completions.create(model="fake-delay-5", messages=MESSAGES)
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-bad", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()


@pytest.mark.anyio
async def test_async_tool_call(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "call tool please"}], tools=TOOLS
    )
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None
    assert tool_calls[0].function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"
