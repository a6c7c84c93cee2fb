"""OpenAI Responses ingress (`/v1/responses`) through the real server, driven by the official openai SDK.

The upstreams speak Chat Completions (the built-in mock, and the fake OpenAI server); Responses in, any
provider out. The stream translator is also fed canonical chunks directly, split at awkward offsets, and every
event it writes is validated against the SDK's own event models.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from providers.canonical import ChunkWriter
from providers.ingress import DialectError
from providers.ingress.responses import ResponsesDialect, ResponsesStream
from providers.types import Usage
from tests.conftest import MASTER_KEY, Gateway, SDKFactory, running_gateway
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

MODELS = ["mock/mock-1", "fake/gpt-4o-mini"]
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
_EVENT_MODELS: dict[str, Any] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}


def _reply(model: str, text: str) -> str:
    return ("Mock reply to: " if model.startswith("mock/") else "fake reply to: ") + text


def _event(sse: bytes) -> dict[str, Any]:
    """One SSE event: its ``event:`` line must name the type its data carries; the SDK's model must accept it."""
    head, _, data = sse.partition(b"\ndata: ")
    assert head.startswith(b"event: ") and sse.endswith(b"\n\n"), sse
    payload: dict[str, Any] = orjson.loads(data)
    assert head[7:].decode() == payload["type"]
    _EVENT_MODELS[payload["type"]].model_validate(payload)
    return payload


async def _collect(stream: Any) -> list[dict[str, Any]]:
    return [event.to_dict() async for event in stream]


def _check_order(events: list[dict[str, Any]]) -> None:
    """Valid SDK events; sequence numbers count up from 0; lifecycle first and last; items added, filled, done."""
    for event in events:
        _EVENT_MODELS[event["type"]].model_validate(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed")
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1 and ids.pop().startswith("resp_")
    opened: dict[int, str] = {}
    closed: set[int] = set()
    for event in events[2:-1]:
        index: int = event.get("output_index", -1)
        if event["type"] == "response.output_item.added":
            assert index not in opened and set(opened) <= closed, "one item at a time, each index once"
            opened[index] = event["item"]["id"]
        elif event["type"] == "response.output_item.done":
            assert index in opened and index not in closed
            assert event["item"]["id"] == opened[index] and event["item"]["status"] in ("completed", "incomplete")
            closed.add(index)
        else:
            assert index in opened and index not in closed and event["item_id"] == opened[index], event
    if events[-1]["type"] != "response.failed":
        assert closed == set(opened)
        assert [item["id"] for item in events[-1]["response"]["output"]] == [opened[i] for i in sorted(opened)]


# -------------------------------------------------------------------------------------- through the server


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shape", ["string", "items"])
async def test_create(gateway: Gateway, sdk: SDKFactory, model: str, shape: str) -> None:
    if shape == "string":
        raw = await sdk().responses.with_raw_response.create(
            model=model, instructions="Be brief.", input="Hello there gateway"
        )
    else:
        raw = await sdk().responses.with_raw_response.create(
            model=model,
            input=[
                {"role": "developer", "content": "Be brief."},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there gateway"}]},
            ],
        )
    response = raw.parse()
    Response.model_validate_json(raw.content)  # strictly, not just as the SDK's lenient parse reads it
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.model == model and response.store is True  # type: ignore[attr-defined]
    assert response.output_text == _reply(model, "Hello there gateway")
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    # both upstreams count words + 3 per message: the instructions arrived as a second message
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (11, 6, 17)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.status, row.http_status, row.model, row.stream) == ("ok", 200, model, False)
    assert (row.prompt_tokens, row.completion_tokens) == (11, 6)


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
async def test_stream_events(gateway: Gateway, sdk: SDKFactory, model: str) -> None:
    raw = await sdk().responses.with_raw_response.create(model=model, input="stream this please", stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = await _collect(raw.parse())
    _check_order(events)
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 2 and "".join(deltas) == _reply(model, "stream this please")
    kinds = [e["type"] for e in events]
    assert kinds[2:5] == ["response.output_item.added", "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["usage"]["output_tokens"] == 6
    assert completed["usage"]["total_tokens"] == completed["usage"]["input_tokens"] + 6
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.status, row.stream) == ("ok", True)
    assert (row.prompt_tokens, row.completion_tokens) == (completed["usage"]["input_tokens"], 6)


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
async def test_stream_helper(gateway: Gateway, sdk: SDKFactory, model: str) -> None:
    async with sdk().responses.stream(model=model, input="stream this please") as stream:
        texts = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert len(texts) > 2 and "".join(texts) == final.output_text == _reply(model, "stream this please")
    assert final.usage is not None and final.usage.output_tokens == 6 and final.usage.input_tokens == 6


def _ask(model: str) -> tuple[str, dict[str, Any]]:
    """A prompt that makes the upstream call get_weather, and the arguments it will send."""
    if model.startswith("mock/"):
        return 'What is the weather? [[tool:get_weather {"city": "Paris"}]]', {"city": "Paris"}
    return "call tool get_weather for Paris", {"input": "call tool get_weather for Paris"}


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_function_call_round_trip(
    gateway: Gateway, sdk: SDKFactory, fake_upstream: FakeOpenAI, model: str, stream: bool
) -> None:
    client = sdk()
    prompt, arguments = _ask(model)
    ask: list[Any] = [{"role": "user", "content": prompt}]
    if stream:
        deltas = 0
        async with client.responses.stream(model=model, input=ask, tools=[WEATHER]) as events:
            async for event in events:
                deltas += event.type == "response.function_call_arguments.delta"
            first: Response = await events.get_final_response()
        assert deltas > 1, "function arguments must arrive as they stream, not in one burst"
    else:
        first = await client.responses.create(model=model, input=ask, tools=[WEATHER], tool_choice="auto")
    assert first.status == "completed"
    Response.model_validate(first.to_dict())
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and len(first.output) == 1
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == arguments
    assert call.call_id and call.id and call.id.startswith("fc_") and call.status == "completed"
    follow = [*ask, *first.output, {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}]
    if model.startswith("mock/"):
        answer = await client.responses.create(model=model, input=follow, tools=[WEATHER])
        assert answer.status == "completed" and answer.output_text == "Tool results: 18C and sunny"
        return
    # the fake calls the tool again while the user's text asks for it, unless told not to
    answer = await client.responses.create(model=model, input=follow, tools=[WEATHER], tool_choice="none")
    assert answer.status == "completed" and answer.output_text == _reply(model, prompt)
    sent = fake_upstream.last_request.json["messages"]
    assert sent[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "18C and sunny"},
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("model", MODELS)
async def test_max_output_tokens_is_incomplete(gateway: Gateway, sdk: SDKFactory, model: str) -> None:
    client = sdk()
    response = await client.responses.create(model=model, input="Hello there gateway", max_output_tokens=3)
    assert response.status == "incomplete"
    Response.model_validate(response.to_dict())
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == _reply(model, "").split(" ", 2)[0] + " reply to:"
    assert response.output[0].type == "message" and response.output[0].status == "incomplete"
    assert response.usage is not None and response.usage.output_tokens == 3
    stream = await client.responses.create(model=model, input="Hello there gateway", max_output_tokens=3, stream=True)
    events = await _collect(stream)
    _check_order(events)
    last = events[-1]
    assert last["type"] == "response.incomplete" and last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["usage"]["output_tokens"] == 3


@pytest.mark.anyio
async def test_upstream_cut_mid_stream_is_response_failed(gateway: Gateway, sdk: SDKFactory) -> None:
    stream = await sdk().responses.create(model="fake/fake-close-after-3", input="a b c d e f g h", stream=True)
    events = await _collect(stream)
    _check_order(events)
    failed = events[-1]["response"]
    assert events[-1]["type"] == "response.failed" and failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error" and failed["error"]["message"]
    assert failed["output"][0]["status"] == "incomplete"


@pytest.mark.anyio
async def test_errors_in_openai_format(gateway: Gateway, sdk: SDKFactory) -> None:
    client = sdk()
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.create(model="nowhere/x", input="x")
    assert missing.value.code == "model_not_found" and "GET /v1/models" in missing.value.message
    hosted = await client.responses.with_raw_response.create(
        model="mock/mock-1", input="x", tools=[{"type": "web_search"}]
    )
    assert hosted.headers["alephant-dropped-tools"] == "web_search", "hosted tools are dropped and named"
    with pytest.raises(openai.NotFoundError) as stored:
        await client.responses.create(model="mock/mock-1", input="x", previous_response_id="resp_123")
    assert "'resp_123' was not found" in stored.value.message
    assert stored.value.param == "previous_response_id"
    row = await gateway.log_row(stored.value.response.headers["alephant-request-id"])
    assert (row.http_status, row.error_code) == (404, "previous_response_not_found")
    with pytest.raises(openai.BadRequestError) as image:
        await client.responses.create(
            model="mock/mock-1",
            input=[{"role": "user", "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}]}],
        )
    assert "file_id" in image.value.message and "image_url" in image.value.message
    with pytest.raises(openai.AuthenticationError):
        await sdk(key="alk_wrong").responses.create(model="mock/mock-1", input="x")


# ------------------------------------------------------------------------------------------- in-process


def _canonical_stream(*, reasoning: bool = False, finish: str = "tool_calls") -> bytes:
    out = ChunkWriter(id="chatcmpl-abc", model="m", include_usage=True)
    events = [out.role()]
    if reasoning:
        events += [out.reasoning("Think"), out.reasoning("ing é.")]
    events += [out.content("Héllo"), out.content(" wörld 🌍"), out.content("!")]
    events += [out.tool_call_start(0, "call_1", "get_weather"), out.tool_call_arguments(0, '{"city"')]
    events += [out.tool_call_arguments(0, ': "Paris"}'), out.tool_call_start(1, "call_2", "get_time", "{}")]
    events += [out.finish(finish)]
    usage = Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=2, reasoning_tokens=3)
    return b"".join(events + out.usage_and_done(usage))


def _translate(data: bytes, sizes: list[int]) -> list[dict[str, Any]]:
    stream = ResponsesStream(model="mock/mock-1")
    out: list[bytes] = []
    at, turn = 0, 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        out += stream.feed(data[at : at + size])
        at, turn = at + size, turn + 1
    out += stream.finish()
    events = [_event(sse) for sse in out]
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (12, 7)
    return events


@pytest.mark.parametrize("sizes", [[1], [2, 5], [7, 3, 1], [64], [100_000]])
def test_stream_translator_at_awkward_offsets(sizes: list[int]) -> None:
    events = _translate(_canonical_stream(reasoning=True), sizes)
    _check_order(events)
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_item.added") == 4  # reasoning, message, two calls
    summary = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta")
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert (summary, text) == ("Thinking é.", "Héllo wörld 🌍!")
    completed = events[-1]
    assert completed["type"] == "response.completed"
    response = Response.model_validate(completed["response"])
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call", "function_call"]
    assert response.output_text == "Héllo wörld 🌍!"
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_1", "get_weather", '{"city": "Paris"}'),
        ("call_2", "get_time", "{}"),
    ]
    assert response.usage is not None and response.usage.model_dump() == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0, "cache_write_tokens_details": None},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 19,
    }
    fragments = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert fragments == ['{"city"', ': "Paris"}', "{}"]


def test_stream_translator_error_and_no_done() -> None:
    stream = ResponsesStream(model="m")
    out = ChunkWriter(id="chatcmpl-x", model="m", include_usage=True)
    events = [_event(e) for e in stream.feed(out.role() + out.content("partial") + out.error("upstream went away"))]
    events += [_event(e) for e in stream.finish()]
    _check_order(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "upstream went away"}
    # a stream that ends without [DONE] still completes; one that never started still starts
    ended = ResponsesStream(model="m")
    tail = [_event(e) for e in ended.feed(out.content("hi")[:-1]) + ended.finish()]
    _check_order(tail)
    assert tail[-1]["type"] == "response.completed" and tail[-1]["response"]["output"][0]["content"][0]["text"] == "hi"
    empty = [_event(e) for e in ResponsesStream(model="m").finish()]
    assert [e["type"] for e in empty] == ["response.created", "response.in_progress", "response.completed"]


def test_response_object_parses_with_the_sdk() -> None:
    canonical = {
        "id": "chatcmpl-1",
        "created": 1_700_000_000,
        "choices": [
            {
                "index": 0,
                "finish_reason": "content_filter",
                "message": {"role": "assistant", "content": "Partly", "reasoning_content": "Hmm."},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1}},
    }
    body = orjson.loads(ResponsesDialect().response(orjson.dumps(canonical), model="mock/mock-1"))
    response = Response.model_validate(body)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter" and response.created_at == 1_700_000_000
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Hmm."
    assert response.output_text == "Partly" and body["store"] is False
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 1
    refused = {"choices": [{"finish_reason": "stop", "message": {"content": None, "refusal": "I can't."}}]}
    only = Response.model_validate_json(ResponsesDialect().response(orjson.dumps(refused), model="m"))
    assert only.status == "completed" and only.usage is not None and only.usage.total_tokens == 0
    assert [part.type for part in only.output[0].content] == ["refusal"]  # type: ignore[union-attr]
    error = ResponsesDialect().error_body(status=404, type="invalid_request_error", code="c", message="m", param="p")
    assert orjson.loads(error) == {
        "error": {"message": "m", "type": "invalid_request_error", "param": "p", "code": "c"}
    }


def test_ingest_maps_items_onto_chat_messages() -> None:
    ingested = ResponsesDialect().ingest(
        "chat",
        {
            "model": "mock/mock-1",
            "instructions": "Be brief.",
            "input": [
                {"role": "system", "content": [{"type": "input_text", "text": "Sys."}]},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look:"},
                        {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
                {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "a", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "b", "arguments": '{"x": 1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
            "tools": [{"type": "function", "name": "a", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "a"},
            "parallel_tool_calls": False,
            "max_output_tokens": 50,
            "temperature": 0.2,
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "metadata": {"k": "v"},
            "store": True,
            "user": "u1",
            "stream": True,
        },
    )
    assert ingested.translated and ingested.client_wants_usage and ingested.stream and ingested.model == "mock/mock-1"
    assert ingested.client_body is not None and ingested.client_body["store"] is True
    body = ingested.body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        ]},
        {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x": 1}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]  # fmt: skip
    assert body["tools"] == [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}, "strict": True}}
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "a"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert (body["max_tokens"], body["temperature"], body["parallel_tool_calls"]) == (50, 0.2, False)
    assert (body["reasoning_effort"], body["user"]) == ("low", "u1")
    assert body["stream_options"] == {"include_usage": True}
    assert "metadata" not in body and "store" not in body
    plain = {"model": "m", "input": "x", "tool_choice": "auto", "parallel_tool_calls": True}
    assert ResponsesDialect().ingest("chat", plain).body == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
    }


@pytest.mark.parametrize(
    ("data", "param", "words"),
    [
        ({"input": "x"}, "model", "'model' is required"),
        ({"model": "m"}, "input", "'input' is required"),
        ({"model": "m", "input": []}, "input", "empty array"),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0]", "'type'"),
        ({"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}}, "tool_choice", "web_search"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation", "not supported"),
        ({"model": "m", "input": "x", "background": True}, "background", "not supported"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "not supported"),
        ({"model": "m", "input": [{"type": "computer_call_output"}]}, "input[0]", "'computer_call_output'"),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role", "developer"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens", "positive"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream", "boolean"),
    ],
)
def test_ingest_refuses_clearly(data: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(DialectError) as caught:
        ResponsesDialect().ingest("chat", data)
    assert caught.value.param == param and words in caught.value.message


def test_hosted_tools_are_dropped_and_namespaces_flattened() -> None:
    ingested = ResponsesDialect().ingest(
        "chat",
        {
            "model": "m",
            "input": "x",
            "tools": [
                {"type": "web_search", "external_web_access": False},
                {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]},
                {"type": "function", "name": "exec"},
            ],
        },
    )
    assert [t["function"]["name"] for t in ingested.body["tools"]] == ["spawn", "exec"]
    assert ingested.dropped == ("web_search",)


@pytest.fixture(scope="module")
def anthropic_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Responses in, Anthropic Messages out (the fake Anthropic API as the `anthropic` provider)."""
    with (
        FakeAnthropic() as fake,
        running_gateway(
            tmp_path_factory.mktemp("responses-to-anthropic"),
            providers={"anthropic": {"base_url": fake.base_url}},
            env={"ANTHROPIC_API_KEY": fake.api_key},
        ) as gw,
    ):
        yield gw


@pytest.mark.anyio
async def test_responses_onto_an_anthropic_upstream(anthropic_gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=anthropic_gateway.api_url, api_key=MASTER_KEY, max_retries=0) as client:
        raw = await client.responses.with_raw_response.create(
            model="anthropic/claude-sonnet-4-5", input="Hello there gateway", instructions="Be brief."
        )
        response = raw.parse()
        events = [
            e
            async for e in await client.responses.create(
                model="anthropic/claude-sonnet-4-5", input="stream it", stream=True
            )
        ]
    assert response.output_text == "fake reply to: Hello there gateway"
    assert response.usage is not None and response.usage.output_tokens > 0
    completed = next(e for e in events if e.type == "response.completed")
    assert completed.response.output_text == "fake reply to: stream it"
    assert sum(e.type == "response.output_text.delta" for e in events) > 1
    row = await anthropic_gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model) == ("anthropic", "claude-sonnet-4-5") and row.cost_nano > 0
