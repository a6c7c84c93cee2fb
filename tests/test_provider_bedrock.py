"""The Bedrock Converse adapter: the fake's fidelity (official boto3 client), the event-stream decoder, golden
request bodies and signatures, response and stream translation, and end to end through a real gateway with
the openai SDK as the client."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import random
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import botocore.eventstream
import httpx
import openai
import orjson
import pytest
import yarl
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import providers.bedrock as bedrock
from finance.pricing import PriceBook
from providers._eventstream import EventStreamDecoder, EventStreamError
from providers.bedrock import BedrockAdapter, converse_request
from providers.catalog import Catalog
from providers.types import ProviderSpec, UpstreamCall, UpstreamResponse, Usage
from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.bedrock_upstream import (
    CACHE_READ,
    CACHE_WRITE,
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    GUARDRAIL_ANSWER,
    FakeBedrock,
    answer_for,
    encode_frame,
    event_frame,
    exception_frame,
    stream_frames,
    verify_sigv4,
)

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
ENV = {"AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_KEY}
SPEC = ProviderSpec(
    id="bedrock",
    adapter="bedrock",
    base_url="https://bedrock-runtime.{region}.amazonaws.com",
    api_key_env="AWS_ACCESS_KEY_ID",
    api_key=DEFAULT_ACCESS_KEY,
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
BEDROCK_WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather of a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()


def make_call(body: dict[str, Any], *, model: str = SONNET, spec: ProviderSpec = SPEC, **kw: Any) -> UpstreamCall:
    return UpstreamCall(
        endpoint=kw.pop("endpoint", "chat"),
        provider=spec,
        model=model,
        body=body,
        raw=orjson.dumps(body),
        stream=bool(body.get("stream")),
        **kw,
    )


def adapter(env: dict[str, str] | None = None) -> BedrockAdapter:
    return BedrockAdapter(env=ENV if env is None else env)


def sse_events(chunks: list[bytes]) -> list[Any]:
    """The JSON of each SSE event (``"[DONE]"`` kept as the string)."""
    events = []
    for chunk in chunks:
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n"), chunk
        data = chunk[6:-2]
        events.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return events


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


@pytest.fixture(scope="module")
def boto(fake: FakeBedrock) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=fake.base_url,
        region_name="us-east-1",
        aws_access_key_id=fake.access_key,
        aws_secret_access_key=fake.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def bedrock_gateway(fake: FakeBedrock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    providers = {
        "bedrock": {"base_url": fake.base_url},
        # the same fake reached with a key it does not know: AWS's 403 must come back as 403
        "bedrock-stranger": {
            "base_url": fake.base_url,
            "adapter": "bedrock",
            "api_key_env": "STRANGER_AWS_ACCESS_KEY_ID",
            "models": [SONNET],
        },
    }
    env = {
        "AWS_ACCESS_KEY_ID": fake.access_key,
        "AWS_SECRET_ACCESS_KEY": fake.secret_key,
        "AWS_SESSION_TOKEN": "",
        "AWS_BEARER_TOKEN_BEDROCK": "",
        "AWS_REGION": "us-east-1",
        "STRANGER_AWS_ACCESS_KEY_ID": "AKIASTRANGER00000000",
    }
    tmp = tmp_path_factory.mktemp("gateway-bedrock")
    with running_gateway(tmp, providers=providers, env=env, config={"upstream": {"timeout": 2}}) as gw:
        yield gw


@pytest.fixture
async def client(bedrock_gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=bedrock_gateway.api_url, api_key=MASTER_KEY, max_retries=0)
    yield sdk
    await sdk.close()


# ---------------------------------------------------------------- a. fidelity: boto3 against the fake


def test_boto3_converse(boto: Any, fake: FakeBedrock) -> None:
    response = boto.converse(
        modelId=SONNET,
        system=[{"text": "Be brief."}],
        messages=[{"role": "user", "content": [{"text": "Hello there"}]}],
        inferenceConfig={"maxTokens": 100, "temperature": 0.2},
    )
    assert response["output"]["message"] == {"role": "assistant", "content": [{"text": "fake reply to: Hello there"}]}
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {"inputTokens": 7, "outputTokens": 5, "totalTokens": 12}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    sent = fake.last_request
    assert sent.path == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", "boto3 escapes the colon"
    assert sent.model == SONNET and sent.header("authorization").startswith("AWS4-HMAC-SHA256 Credential=AKIA")


def test_boto3_converse_stream_decodes_the_binary_frames(boto: Any) -> None:
    response = boto.converse_stream(
        modelId=NOVA, messages=[{"role": "user", "content": [{"text": "think, stream me"}]}]
    )
    events = list(response["stream"])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    assert text == "fake reply to: think, stream me"
    deltas = [e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e]
    reasoning = [d["reasoningContent"] for d in deltas if "reasoningContent" in d]
    assert "".join(r.get("text", "") for r in reasoning) == "Thinking about: think, stream me"
    assert reasoning[-1] == {"signature": "fake-signature"}
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 11


def test_boto3_tool_use_round_trip(boto: Any) -> None:
    tools = {"tools": [BEDROCK_WEATHER, {"toolSpec": {"name": "get_time", "inputSchema": {"json": {}}}}]}
    ask = {"role": "user", "content": [{"text": "call tools please"}]}
    first = boto.converse(modelId=SONNET, messages=[ask], toolConfig=tools)
    assert first["stopReason"] == "tool_use"
    blocks = first["output"]["message"]["content"]
    assert blocks[0] == {"text": "Calling get_weather, get_time."}
    uses = [b["toolUse"] for b in blocks[1:]]
    assert [u["name"] for u in uses] == ["get_weather", "get_time"]
    assert uses[0]["input"] == {"input": "call tools please"} and uses[0]["toolUseId"].startswith("tooluse_")
    results = [{"toolResult": {"toolUseId": u["toolUseId"], "content": [{"text": "sunny 21C"}]}} for u in uses]
    second = boto.converse(
        modelId=SONNET,
        messages=[ask, first["output"]["message"], {"role": "user", "content": results}],
        toolConfig=tools,
    )
    assert second["output"]["message"]["content"] == [{"text": "tool said: sunny 21C sunny 21C"}]
    assert second["stopReason"] == "end_turn"


def test_boto3_throttling_raises_client_error(boto: Any) -> None:
    with pytest.raises(ClientError) as caught:
        boto.converse(modelId="fake-status-429", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert isinstance(caught.value, boto.exceptions.ThrottlingException)


def test_boto3_stream_exception_frame_raises(boto: Any) -> None:
    response = boto.converse_stream(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "stream error"}]}])
    with pytest.raises(botocore.eventstream.EventStreamError) as caught:
        list(response["stream"])
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_boto3_embeddings_through_invoke_model(boto: Any) -> None:
    response = boto.invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "embed these words", "dimensions": 256})
    )
    body = json.loads(response["body"].read())
    assert len(body["embedding"]) == 256 and body["inputTextTokenCount"] == 3
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "3"


def test_fake_checks_the_signature(fake: FakeBedrock) -> None:
    wrong_secret = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake.base_url,
        region_name="us-east-1",
        aws_access_key_id=fake.access_key,
        aws_secret_access_key="not-the-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as caught:
        wrong_secret.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_adapter_bearer_requests_are_accepted(fake: FakeBedrock) -> None:
    # boto3 sends Bedrock API keys over HTTPS only, so the bearer path is checked with the adapter's own request
    spec = dataclasses.replace(SPEC, base_url=fake.base_url)
    call = make_call({"messages": [{"role": "user", "content": "hi"}]}, model=NOVA, spec=spec)
    request = adapter({"AWS_BEARER_TOKEN_BEDROCK": fake.bearer_token}).build_request(call)
    response = httpx.post(request.url, headers=request.headers, content=request.body)
    assert response.status_code == 200 and response.json()["output"]["message"]["content"] == [
        {"text": "fake reply to: hi"}
    ]
    assert fake.last_request.header("authorization") == f"Bearer {fake.bearer_token}"
    request = adapter({"AWS_BEARER_TOKEN_BEDROCK": "wrong"}).build_request(call)
    refused = httpx.post(request.url, headers=request.headers, content=request.body)
    assert refused.status_code == 403 and refused.headers["x-amzn-errortype"].startswith("UnrecognizedClient")


# ---------------------------------------------------------------- the event-stream decoder


def _stream_bytes() -> bytes:
    body = {
        "messages": [{"role": "user", "content": [{"text": "think and call tools"}]}],
        "toolConfig": {"tools": [BEDROCK_WEATHER, {"toolSpec": {"name": "get_time", "inputSchema": {"json": {}}}}]},
    }
    return b"".join(stream_frames(answer_for(body, request_key="golden")))


def test_decoder_matches_botocore_on_every_split() -> None:
    data = _stream_bytes()
    reference = botocore.eventstream.EventStreamBuffer()
    reference.add_data(data)
    expected = [(dict(m.headers), m.payload) for m in reference]
    assert len(expected) > 20
    whole = EventStreamDecoder().feed(data)
    assert [(m.headers, m.payload) for m in whole] == expected
    one_by_one = EventStreamDecoder()
    decoded = [m for byte in range(len(data)) for m in one_by_one.feed(data[byte : byte + 1])]
    assert [(m.headers, m.payload) for m in decoded] == expected and one_by_one.pending == 0
    rng = random.Random(7)
    for _ in range(50):
        decoder, pos, got = EventStreamDecoder(), 0, []
        while pos < len(data):
            step = rng.randint(1, 40)
            got += decoder.feed(data[pos : pos + step])
            pos += step
        assert [(m.headers, m.payload) for m in got] == expected


def test_decoder_reads_every_header_type() -> None:
    stamp, ident = 1_700_000_000_000, uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = (
        b"\x01t\x00"
        + b"\x01f\x01"
        + b"\x01b\x02\xff"
        + b"\x01s\x03"
        + struct.pack(">h", -2)
        + b"\x01i\x04"
        + struct.pack(">i", 70000)
        + b"\x01l\x05"
        + struct.pack(">q", 2**40)
        + b"\x01y\x06\x00\x02\x00\x01"
        + b"\x01z\x07\x00\x02ok"
        + b"\x01d\x08"
        + struct.pack(">q", stamp)
        + b"\x01u\x09"
        + ident.bytes
    )
    prelude = struct.pack(">II", 16 + len(headers) + 2, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + b"{}"
    (decoded,) = EventStreamDecoder().feed(message + struct.pack(">I", zlib.crc32(message)))
    assert decoded.headers == {
        "t": True, "f": False, "b": -1, "s": -2, "i": 70000, "l": 2**40, "y": b"\x00\x01", "z": "ok", "d": stamp,
        "u": ident,
    }  # fmt: skip
    assert decoded.payload == b"{}"


@pytest.mark.parametrize("where", ["prelude", "message"])
def test_decoder_rejects_corrupt_crcs(where: str) -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[9 if where == "prelude" else -8] ^= 0x01
    with pytest.raises(EventStreamError, match=f"{where} CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_decoder_rejects_impossible_lengths() -> None:
    prelude = struct.pack(">II", 8, 0)
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


# ---------------------------------------------------------------- b. golden requests and signatures


def test_plain_request_golden() -> None:
    body = {
        "model": "bedrock/" + SONNET,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Hello"},
        ],
        "max_completion_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "presence_penalty": 0.5,
        "user": "someone",
    }
    request = adapter().build_request(make_call(body))
    assert request.method == "POST" and request.stream is False and request.provider_id == "bedrock"
    assert request.url == f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{SONNET}/converse"
    assert orjson.loads(request.body) == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "system": [{"text": "Be brief."}, {"text": "Answer in English."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
    }
    headers = request.headers
    assert (headers["content-type"], headers["accept"]) == ("application/json", "application/json")
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={DEFAULT_ACCESS_KEY}/")
    assert (
        "/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="
        in (headers["Authorization"])
    )
    assert "X-Amz-Security-Token" not in headers


def _verify(request: Any, *, region: str = "us-east-1", token: str | None = None) -> tuple[str, str] | None:
    """Check a built request's signature the way AWS would, from the URL as aiohttp will send it."""
    url = yarl.URL(request.url)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = url.raw_host if url.is_default_port() else f"{url.raw_host}:{url.port}"
    return verify_sigv4(
        method=request.method,
        raw_path=url.raw_path,
        headers=headers,
        body=request.body,
        credentials=Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, token),
        region=region,
    )


@pytest.mark.parametrize(
    "model",
    [SONNET, "us.amazon.nova-pro-v1:0", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-x"],
)
def test_signature_covers_the_path_exactly_as_sent(model: str) -> None:
    request = adapter().build_request(make_call({"messages": [{"role": "user", "content": "hi"}]}, model=model))
    assert str(yarl.URL(request.url)) == request.url, "aiohttp must not re-encode what was signed"
    assert _verify(request) is None
    if "/" in model:
        assert "inference-profile%2Fus.meta" in request.url
    request.headers = dict(request.headers, accept="text/plain")
    problem = _verify(request)
    assert problem is not None and problem[0] == "InvalidSignatureException"


def test_region_from_options_then_env_then_default() -> None:
    call = make_call({"messages": [{"role": "user", "content": "hi"}]})
    for options, env, region in [
        ({"region": "eu-west-3"}, {"AWS_REGION": "ap-south-1"}, "eu-west-3"),
        ({}, {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1"),
        ({}, {"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ({}, {}, "us-east-1"),
    ]:
        call.provider = dataclasses.replace(SPEC, options=options)
        request = adapter({**ENV, **env}).build_request(call)
        assert request.url.startswith(f"https://bedrock-runtime.{region}.amazonaws.com/model/")
        assert f"/{region}/bedrock/aws4_request" in request.headers["Authorization"]
        assert _verify(request, region=region) is None


def test_session_token_is_signed_and_sent() -> None:
    request = adapter({**ENV, "AWS_SESSION_TOKEN": "session-token-1"}).build_request(
        make_call({"messages": [{"role": "user", "content": "hi"}]})
    )
    assert request.headers["X-Amz-Security-Token"] == "session-token-1"
    assert "x-amz-security-token" in request.headers["Authorization"]
    assert _verify(request, token="session-token-1") is None


def test_bedrock_api_key_is_a_bearer_token() -> None:
    call = make_call({"messages": [{"role": "user", "content": "hi"}]})
    request = adapter({**ENV, "AWS_BEARER_TOKEN_BEDROCK": "brk-key"}).build_request(call)
    assert request.headers["authorization"] == "Bearer brk-key" and "X-Amz-Date" not in request.headers
    call.provider = dataclasses.replace(SPEC, api_key_env="AWS_BEARER_TOKEN_BEDROCK", api_key="brk-row-key")
    assert adapter({}).build_request(call).headers["authorization"] == "Bearer brk-row-key"


def test_credentials_are_resolved_once_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str | None] = []
    original = bedrock._credentials

    def counting(access_key: str | None, env: Any) -> Credentials | None:
        calls.append(access_key)
        return original(access_key, env)

    monkeypatch.setattr(bedrock, "_credentials", counting)
    adapted = adapter()
    for _ in range(3):
        adapted.build_request(make_call({"messages": [{"role": "user", "content": "hi"}]}))
    assert calls == [DEFAULT_ACCESS_KEY]


def test_missing_secret_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoChain:
        def get_credentials(self) -> None:
            return None

    monkeypatch.setattr(bedrock, "get_session", NoChain)
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        adapter({}).build_request(make_call({"messages": [{"role": "user", "content": "hi"}]}))


def test_stream_request_goes_to_converse_stream() -> None:
    request = adapter().build_request(make_call({"messages": [{"role": "user", "content": "hi"}], "stream": True}))
    assert request.url.endswith("/converse-stream") and request.stream is True
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "stream" not in orjson.loads(request.body)


def test_tool_conversation_golden() -> None:
    body = {
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather and time?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "user", "content": "Thanks, summarise."},
        ],
        "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }  # fmt: skip
    assert converse_request(body) == {
        "messages": [
            {"role": "user", "content": [
                {"text": "Weather and time?"},
                {"image": {"format": "png", "source": {"bytes": PIXEL}}},
            ]},
            {"role": "assistant", "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "get_time", "input": {}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "12:00"}]}},
                {"text": "Thanks, summarise."},
            ]},
        ],
        "toolConfig": {
            "tools": [
                BEDROCK_WEATHER,
                {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ],
            "toolChoice": {"tool": {"name": "get_weather"}},
        },
    }  # fmt: skip


@pytest.mark.parametrize(("choice", "expected"), [("auto", {"auto": {}}), ("required", {"any": {}}), (None, None)])
def test_tool_choice_mapping(choice: str | None, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    if choice:
        body["tool_choice"] = choice
    config = converse_request(body)["toolConfig"]
    assert config.get("toolChoice") == expected and config["tools"] == [BEDROCK_WEATHER]


def test_tool_choice_none_drops_tools_unless_the_history_needs_them() -> None:
    ask = {"role": "user", "content": "hi"}
    assert "toolConfig" not in converse_request({"messages": [ask], "tools": [WEATHER], "tool_choice": "none"})
    history = [
        ask,
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": ""},
    ]  # fmt: skip
    kept = converse_request({"messages": history, "tools": [WEATHER], "tool_choice": "none"})
    assert kept["toolConfig"] == {"tools": [BEDROCK_WEATHER]}
    assert kept["messages"][2] == {"role": "user", "content": [{"toolResult": {"toolUseId": "c1", "content": []}}]}
    placeholder = converse_request({"messages": history})["toolConfig"]
    assert placeholder == {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
    }


def test_response_format_json_schema_maps_to_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}},
    }
    assert converse_request(body)["outputConfig"] == {
        "textFormat": {
            "type": "json_schema",
            "structure": {"jsonSchema": {"schema": json.dumps(schema, separators=(",", ":")), "name": "thing"}},
        }
    }
    body["response_format"] = {"type": "json_object"}
    assert "outputConfig" not in converse_request(body)


def test_s3_images_and_assistant_turn_merging() -> None:
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "s3://bucket/cat.JPG"}}]},
            {"role": "user", "content": "What is it?"},
            {"role": "assistant", "content": [{"type": "text", "text": "A"}]},
            {"role": "assistant", "content": "cat."},
        ]
    }
    assert converse_request(body)["messages"] == [
        {"role": "user", "content": [
            {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.JPG"}}}},
            {"text": "What is it?"},
        ]},
        {"role": "assistant", "content": [{"text": "A"}, {"text": "cat."}]},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]},
         "cannot fetch"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}]}]},  # noqa: E501
         "png, jpeg"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n > 1"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}]}]},  # noqa: E501
         "not JSON"),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "web_search"}]}, "function tools"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role 'function'"),
    ],
)  # fmt: skip
def test_requests_bedrock_cannot_express_are_refused(body: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        converse_request(body)


def test_embedding_requests() -> None:
    titan = adapter().build_request(
        make_call({"input": "one text", "dimensions": 256}, model="amazon.titan-embed-text-v2:0", endpoint="embeddings")
    )
    assert titan.url.endswith("/model/amazon.titan-embed-text-v2:0/invoke")
    assert orjson.loads(titan.body) == {"inputText": "one text", "dimensions": 256}
    cohere = adapter().build_request(
        make_call({"input": ["a", "b"]}, model="cohere.embed-english-v3", endpoint="embeddings")
    )
    assert orjson.loads(cohere.body) == {"texts": ["a", "b"], "input_type": "search_document"}
    with pytest.raises(ValueError, match="one text a call"):
        adapter().build_request(
            make_call({"input": ["a", "b"]}, model="amazon.titan-embed-text-v1", endpoint="embeddings")
        )
    with pytest.raises(ValueError, match="string or a list of strings"):
        adapter().build_request(
            make_call({"input": [[1, 2]]}, model="amazon.titan-embed-text-v1", endpoint="embeddings")
        )


# ---------------------------------------------------------------- b. response translation


def _response(body: dict[str, Any], **headers: str) -> UpstreamResponse:
    return UpstreamResponse(status=200, headers={"x-amzn-requestid": "req-1", **headers}, body=orjson.dumps(body))


def test_parse_text_response_with_cache_usage() -> None:
    wire = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}, {"text": " world"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 25, "cacheReadInputTokens": 8,
                  "cacheWriteInputTokens": 4},
        "metrics": {"latencyMs": 10},
    }  # fmt: skip
    parsed = adapter().parse_response(make_call({}), _response(wire))
    assert parsed.usage == Usage(prompt_tokens=22, completion_tokens=3, cached_tokens=8, cache_write_tokens=4)
    body = orjson.loads(parsed.body)
    assert body["id"] == "chatcmpl-req-1" and body["model"] == SONNET and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello world", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 22 and body["usage"]["prompt_tokens_details"]["cached_tokens"] == 8


def test_parse_tool_use_and_reasoning_response() -> None:
    wire = {
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "sig"}}},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "get_time", "input": {}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14},
    }  # fmt: skip
    message = orjson.loads(adapter().parse_response(make_call({}), _response(wire)).body)["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None and message["message"]["reasoning_content"] == "Need weather."
    assert message["message"]["tool_calls"] == [
        {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "tooluse_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
     ("model_context_window_exceeded", "length"), ("malformed_tool_use", "stop")],
)  # fmt: skip
def test_stop_reasons(stop: str, finish: str) -> None:
    wire = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": stop, "usage": {}}
    body = orjson.loads(adapter().parse_response(make_call({}), _response(wire)).body)
    assert body["choices"][0]["finish_reason"] == finish


def test_parse_embeddings() -> None:
    titan = adapter().parse_response(
        make_call({"input": "x"}, model="amazon.titan-embed-text-v2:0", endpoint="embeddings"),
        _response({"embedding": [0.5, -0.5], "inputTextTokenCount": 3}),
    )
    assert orjson.loads(titan.body) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.5]}],
        "model": "amazon.titan-embed-text-v2:0",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    cohere = adapter().parse_response(
        make_call({"input": ["a", "b"]}, model="cohere.embed-english-v3", endpoint="embeddings"),
        _response({"embeddings": [[1.0], [2.0]], "id": "x", "response_type": "embeddings_floats"},
                  **{"x-amzn-bedrock-input-token-count": "2"}),
    )  # fmt: skip
    assert [d["embedding"] for d in orjson.loads(cohere.body)["data"]] == [[1.0], [2.0]]
    assert cohere.usage.prompt_tokens == 2


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b'{"message":"Too many requests"}', {}, "Too many requests"),
        (b'{"Message":"User is not authorized"}', {}, "User is not authorized"),
        (b"<html>Bad Gateway</html>", {}, "<html>Bad Gateway</html>"),
        (b"", {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/"}, "ThrottlingException"),
        (b"", {}, "HTTP 503"),
    ],
)
def test_error_message(body: bytes, headers: dict[str, str], message: str) -> None:
    assert adapter().error_message(UpstreamResponse(status=503, headers=headers, body=body)) == message


# ---------------------------------------------------------------- b. stream translation


def _run(data: bytes, *, splits: list[int] | None = None, include_usage: bool = True) -> tuple[list[Any], Usage]:
    """Feed ``data`` cut at ``splits``: the translated events (ids and timestamps dropped) and the usage."""
    translator = adapter().stream(make_call({"stream": True}, client_wants_usage=include_usage))
    out: list[bytes] = []
    cuts = [0, *(splits or []), len(data)]
    for start, end in itertools.pairwise(cuts):
        out += translator.feed(data[start:end])
    out += translator.finish()
    events = [
        {k: v for k, v in e.items() if k not in ("id", "created")} if isinstance(e, dict) else e
        for e in sse_events(out)
    ]
    return events, translator.usage


def _translate(data: bytes, *, splits: list[int] | None = None, include_usage: bool = True) -> list[Any]:
    return _run(data, splits=splits, include_usage=include_usage)[0]


def _deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]


def test_stream_text_with_reasoning_and_cache_usage_at_any_split() -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "think, use cache for this long prompt right now"}]}]}
    data = b"".join(stream_frames(answer_for(body, request_key="k")))
    reference, usage_seen = _run(data)
    deltas = _deltas(reference)
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert (
        "".join(d.get("reasoning_content", "") for d in deltas)
        == "Thinking about: think, use cache for this long prompt right"
    )
    texts = [d["content"] for d in deltas[1:] if d.get("content")]
    assert "".join(texts) == "fake reply to: think, use cache for this long prompt right now" and len(texts) == 12
    finish = [e for e in reference if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]]
    assert [e["choices"][0]["finish_reason"] for e in finish] == ["stop"]
    usage = reference[-2]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 22)
    assert usage["prompt_tokens_details"]["cached_tokens"] == CACHE_READ and reference[-1] == "[DONE]"
    assert usage_seen == Usage(
        prompt_tokens=12, completion_tokens=22, cached_tokens=CACHE_READ, cache_write_tokens=CACHE_WRITE
    )
    # every offset inside the first frames (prelude, headers, payload, CRC), then a sample of the rest
    rng = random.Random(11)
    for cut in [*range(1, 400), *rng.sample(range(400, len(data)), 100)]:
        assert _translate(data, splits=[cut]) == reference, f"split at {cut}"


def test_stream_parallel_tool_calls_arrive_as_fragments() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"text": "call tools now"}]}],
        "toolConfig": {"tools": [BEDROCK_WEATHER, {"toolSpec": {"name": "get_time", "inputSchema": {"json": {}}}}]},
    }
    data = b"".join(stream_frames(answer_for(body, request_key="k")))
    rng = random.Random(3)
    events = _translate(data, splits=sorted(rng.sample(range(1, len(data)), 40)), include_usage=False)
    deltas = _deltas(events)
    calls = [c for d in deltas for c in d.get("tool_calls", ())]
    starts = [c for c in calls if "id" in c]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in starts] == [
        (0, "get_weather", ""),
        (1, "get_time", ""),
    ]
    assert all(c["id"].startswith("tooluse_") and c["type"] == "function" for c in starts)
    for index in (0, 1):
        fragments = [c["function"]["arguments"] for c in calls if c["index"] == index and "id" not in c]
        assert len(fragments) > 1 and json.loads("".join(fragments)) == {"input": "call tools now"}
    assert "".join(d.get("content") or "" for d in deltas) == "Calling get_weather, get_time."
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls" and events[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and e.get("usage") for e in events), "usage only when the client asked"


def test_stream_exception_frame_becomes_an_error_event() -> None:
    data = event_frame("messageStart", {"role": "assistant"}) + exception_frame("throttlingException", "Slow down")
    translator = adapter().stream(make_call({"stream": True}))
    events = sse_events(translator.feed(data) + translator.finish())
    assert events[-1] == {
        "error": {"message": "Slow down", "type": "upstream_error", "param": None, "code": "throttlingException"}
    }
    assert "[DONE]" not in events
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}
    error_frame = encode_frame(headers, b"")
    translator = adapter().stream(make_call({"stream": True}))
    assert sse_events(translator.feed(error_frame))[-1]["error"]["code"] == "InternalFailure"


def test_stream_corruption_and_truncation_end_with_an_error() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF
    translator = adapter().stream(make_call({"stream": True}))
    events = sse_events(translator.feed(bytes(frame)))
    assert events[-1]["error"]["code"] == "upstream_stream_corrupt"
    assert translator.feed(b"more") == [] and translator.finish() == []
    translator = adapter().stream(make_call({"stream": True}))
    whole = event_frame("messageStart", {"role": "assistant"})
    partial = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})[:10]
    assert len(sse_events(translator.feed(whole + partial))) == 1
    assert sse_events(translator.finish())[-1]["error"]["code"] == "upstream_stream_cut"


def test_stream_without_metadata_still_finishes() -> None:
    frames = [
        event_frame("messageStart", {"role": "assistant"}),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        event_frame("messageStop", {"stopReason": "max_tokens"}),
    ]
    events = _translate(b"".join(frames), include_usage=False)
    finishes = [e if e == "[DONE]" else e["choices"][0]["finish_reason"] for e in events]
    assert finishes == [None, None, "length", "[DONE]"]


def test_stream_tool_calls_without_message_stop_finish_as_tool_calls() -> None:
    start = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_time"}}
    frames = [
        event_frame("messageStart", {"role": "assistant"}),
        event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": start}),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
        event_frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}}),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ignored after the end"}}),
    ]
    events, usage = _run(b"".join(frames), include_usage=False)
    assert [e if e == "[DONE]" else e["choices"][0]["finish_reason"] for e in events] == [
        None, None, None, "tool_calls", "[DONE]"
    ]  # fmt: skip
    assert usage == Usage(prompt_tokens=3, completion_tokens=2)


def test_stream_event_that_is_not_an_object_is_an_error() -> None:
    frame = encode_frame({":message-type": "event", ":event-type": "messageStart"}, b"[1, 2]")
    translator = adapter().stream(make_call({"stream": True}))
    assert sse_events(translator.feed(frame))[-1]["error"]["code"] == "upstream_stream_corrupt"


# ---------------------------------------------------------------- c. end to end through a real gateway


async def _log(gateway: Gateway, raw: Any) -> Any:
    return await gateway.log_row(raw.headers["alephant-request-id"])


@pytest.mark.anyio
async def test_e2e_plain_chat_is_signed_priced_and_logged(
    bedrock_gateway: Gateway, client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    fake.clear()
    raw = await client.chat.completions.with_raw_response.create(
        model=f"bedrock/{SONNET}",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there gateway"}],
        temperature=0.2,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake reply to: Hello there gateway"
    assert completion.choices[0].finish_reason == "stop" and completion.model == SONNET
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 6)
    assert raw.headers["alephant-provider"] == "bedrock"
    sent = fake.last_request
    assert sent.path == f"/model/{SONNET}/converse" and sent.operation == "converse"
    assert sent.header("authorization").startswith(f"AWS4-HMAC-SHA256 Credential={fake.access_key}/")
    assert sent.json["system"] == [{"text": "Be brief."}] and sent.json["inferenceConfig"] == {"temperature": 0.2}
    row = await _log(bedrock_gateway, raw)
    assert (row.status, row.provider, row.upstream_model) == ("ok", "bedrock", SONNET)
    assert (row.prompt_tokens, row.completion_tokens) == (8, 6)
    assert row.cost_nano > 0 and row.price_source is not None and row.price_source.startswith("genai-prices")


@pytest.mark.anyio
async def test_e2e_streaming_with_usage(bedrock_gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=f"bedrock/{NOVA}",
        messages=[{"role": "user", "content": "stream these words to me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in raw.parse()]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == "fake reply to: stream these words to me please" and len(texts) >= 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 9)
    row = await _log(bedrock_gateway, raw)
    assert row.stream is True and (row.prompt_tokens, row.completion_tokens) == (9, 9) and row.cost_nano > 0


@pytest.mark.anyio
async def test_e2e_streaming_hides_usage_not_asked_for(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=f"bedrock/{NOVA}", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)


@pytest.mark.anyio
async def test_e2e_tool_round_trip(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    messages: list[Any] = [{"role": "user", "content": "Please call tool for Oslo"}]
    first = await client.chat.completions.create(model=f"bedrock/{SONNET}", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Calling get_weather."
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"input": "Please call tool for Oslo"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"},
    ]
    final = await client.chat.completions.create(model=f"bedrock/{SONNET}", messages=messages, tools=[WEATHER])
    assert final.choices[0].message.content == "tool said: Sunny, 21 degrees"
    assert final.choices[0].finish_reason == "stop"
    sent = fake.last_request.json["messages"]
    assert sent[1]["content"][1]["toolUse"]["toolUseId"] == call.id
    assert sent[2]["content"] == [{"toolResult": {"toolUseId": call.id, "content": [{"text": "Sunny, 21 degrees"}]}}]


@pytest.mark.anyio
async def test_e2e_streamed_parallel_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "call tools for Oslo"}]
    stream = await client.chat.completions.create(
        model=f"bedrock/{SONNET}", messages=messages, tools=[WEATHER, TIME], stream=True
    )
    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    finish = None
    async for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": delta.id, "name": "", "arguments": ""})
            if delta.function and delta.function.name:
                entry["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                entry["arguments"] += delta.function.arguments
                fragments[delta.index] = fragments.get(delta.index, 0) + 1
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert all(n > 1 for n in fragments.values()), "arguments must stream in fragments"
    assistant = {
        "role": "assistant",
        "content": "Calling get_weather, get_time.",
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in (calls[0], calls[1])
        ],
    }
    messages += [assistant] + [
        {"role": "tool", "tool_call_id": c["id"], "content": f"{c['name']} ok"} for c in (calls[0], calls[1])
    ]
    stream = await client.chat.completions.create(
        model=f"bedrock/{SONNET}", messages=messages, tools=[WEATHER, TIME], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "tool said: get_weather ok get_time ok"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "extra", "finish", "text"),
    [
        ("one two three", {}, "stop", "fake reply to: one two three"),
        ("one two three", {"max_tokens": 2}, "length", "fake reply"),
        ("one two three", {"stop": ["two"]}, "stop", "fake reply to: one"),
        ("trigger the guardrail", {}, "content_filter", GUARDRAIL_ANSWER),
        ("call tool", {"tools": [WEATHER]}, "tool_calls", "Calling get_weather."),
        ("no trigger words", {"tools": [WEATHER], "tool_choice": "required"}, "tool_calls", "Calling get_weather."),
    ],
)
async def test_e2e_finish_reasons(
    client: openai.AsyncOpenAI, content: str, extra: dict[str, Any], finish: str, text: str
) -> None:
    completion = await client.chat.completions.create(
        model=f"bedrock/{NOVA}", messages=[{"role": "user", "content": content}], **extra
    )
    assert (completion.choices[0].finish_reason, completion.choices[0].message.content) == (finish, text)


@pytest.mark.anyio
async def test_e2e_cache_tokens_count_in_the_prompt(bedrock_gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=f"bedrock/{SONNET}",
        messages=[{"role": "user", "content": "please use cache for this rather long prompt today"}],
    )
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens == 12 and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    row = await _log(bedrock_gateway, raw)
    assert (row.prompt_tokens, row.cached_tokens) == (12, CACHE_READ)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("fake-status-400", 400, "Malformed input request"),
        ("fake-status-401", 401, "The security token included in the request is invalid."),
        ("fake-status-403", 403, "You don't have access to the model"),
        ("fake-status-404", 404, "Could not resolve the foundation model"),
        ("fake-status-429", 429, "Too many requests"),
        ("fake-status-500", 502, "The system encountered an unexpected error"),
        ("fake-status-503", 502, "Bedrock is unable to process your request."),
        ("not.a-model-v1:0", 400, "The provided model identifier is invalid."),
    ],
)
async def test_e2e_error_mapping(client: openai.AsyncOpenAI, model: str, status: int, message: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=f"bedrock/{model}", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status and message in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
    if status == 502:
        assert "Provider 'bedrock' failed with HTTP" in caught.value.message


@pytest.mark.anyio
async def test_e2e_unknown_access_key_is_a_403(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.chat.completions.create(
            model=f"bedrock-stranger/{SONNET}", messages=[{"role": "user", "content": "hi"}]
        )
    assert "security token included in the request is invalid" in caught.value.message


@pytest.mark.anyio
async def test_e2e_timeout_is_a_504(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="bedrock/fake-delay-5", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 504


@pytest.mark.anyio
async def test_e2e_mid_stream_exception_reaches_the_client(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=f"bedrock/{NOVA}", messages=[{"role": "user", "content": "a stream error now"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="Too many requests"):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["fake"]


@pytest.mark.anyio
async def test_e2e_http_image_urls_are_refused_before_sending(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    fake.clear()
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(openai.BadRequestError, match="cannot fetch image URLs"):
        await client.chat.completions.create(model=f"bedrock/{SONNET}", messages=[{"role": "user", "content": [image]}])
    assert fake.requests == []


@pytest.mark.anyio
async def test_e2e_embeddings(bedrock_gateway: Gateway, client: openai.AsyncOpenAI) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model="bedrock/amazon.titan-embed-text-v2:0", input="embed me now", dimensions=256
    )
    titan = raw.parse()
    assert len(titan.data) == 1 and len(titan.data[0].embedding) == 256 and titan.usage.prompt_tokens == 3
    row = await _log(bedrock_gateway, raw)
    assert (row.provider, row.prompt_tokens) == ("bedrock", 3) and row.cost_nano > 0
    cohere = await client.embeddings.create(model="bedrock/cohere.embed-english-v3", input=["one", "two words"])
    assert [len(d.embedding) for d in cohere.data] == [1024, 1024] and cohere.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError, match="one text a call"):
        await client.embeddings.create(model="bedrock/amazon.titan-embed-text-v2:0", input=["a", "b"])


def test_bedrock_yaml_row_loads_and_every_model_is_priced() -> None:
    catalog = Catalog.load(env={"AWS_ACCESS_KEY_ID": "AKIA"})
    spec = catalog.provider("bedrock")
    assert spec is not None and spec.available and spec.adapter == "bedrock"
    assert spec.base_url == "https://bedrock-runtime.{region}.amazonaws.com"
    assert spec.api_key_env == "AWS_ACCESS_KEY_ID" and spec.api_key == "AKIA"
    info = catalog.model_info("bedrock", SONNET)
    assert info is not None and info.context_window == 200000 and "tools" in info.capabilities
    assert catalog.model_info("bedrock", "cohere.embed-english-v3").endpoint == "embeddings"  # type: ignore[union-attr]
    prices = PriceBook(catalog.prices)
    unpriced = [m for m in (*spec.models, *spec.embedding_models) if prices.price("bedrock", m) is None]
    assert unpriced == []
