"""Anthropic Messages ingress (`/v1/messages`) through the real server, driven by the official anthropic SDK.

The upstreams here speak OpenAI's wire (the built-in mock, and the fake OpenAI server); Messages in, any
provider out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.fakes.anthropic_upstream import FakeAnthropic

pytestmark = pytest.mark.anyio

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def claude(gateway: Gateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    yield client
    await client.close()


@pytest.mark.parametrize("model", ["mock/mock-1", "fake/gpt-4o-mini"])
async def test_messages_create(gateway: Gateway, claude: anthropic.AsyncAnthropic, model: str) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=model,
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello there gateway"}],
    )
    message = await raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.content[0].text.endswith("reply to: Hello there gateway")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 6
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.status, row.model, row.completion_tokens) == ("ok", model, 6)
    assert row.prompt_tokens == message.usage.input_tokens


async def test_stream_helper(gateway: Gateway, claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="mock/mock-1", max_tokens=100, messages=[{"role": "user", "content": "stream this please"}]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) > 2 and "".join(texts) == "Mock reply to: stream this please"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6 and final.usage.input_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(gateway: Gateway, claude: anthropic.AsyncAnthropic, stream: bool) -> None:
    ask: list[Any] = [{"role": "user", "content": 'What is the weather? [[tool:get_weather {"city": "Paris"}]]'}]
    if stream:
        deltas = 0
        async with claude.messages.stream(model="mock/mock-1", max_tokens=200, tools=[WEATHER], messages=ask) as s:
            async for event in s:
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    deltas += 1
            first = await s.get_final_message()
        assert deltas > 1, "tool arguments must arrive as they stream, not in one burst"
    else:
        first = await claude.messages.create(model="mock/mock-1", max_tokens=200, tools=[WEATHER], messages=ask)
    assert first.stop_reason == "tool_use"
    use = next(block for block in first.content if block.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    follow = [
        *ask,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C and sunny"}]},
    ]
    answer = await claude.messages.create(model="mock/mock-1", max_tokens=200, tools=[WEATHER], messages=follow)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text" and answer.content[0].text == "Tool results: 18C and sunny"


async def test_system_role_inside_messages_and_bearer_auth(gateway: Gateway) -> None:
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, auth_token=MASTER_KEY, max_retries=0) as bearer:
        message = await bearer.messages.create(
            model="mock/mock-1",
            max_tokens=50,
            messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}],  # type: ignore[list-item]
        )
    assert message.content[0].type == "text" and message.content[0].text == "Mock reply to: hi"


async def test_count_tokens_is_an_estimate(gateway: Gateway, claude: anthropic.AsyncAnthropic) -> None:
    raw = await claude.messages.with_raw_response.count_tokens(
        model="mock/mock-1", messages=[{"role": "user", "content": "count these tokens please " * 10}]
    )
    assert (await raw.parse()).input_tokens > 10
    assert raw.headers["alephant-token-count"] == "estimate"


async def test_errors_in_anthropic_format(gateway: Gateway, claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await claude.messages.create(model="nowhere/x", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key="alk_wrong", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.create(model="mock/mock-1", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        response = await http.post(
            "/v1/messages",
            json={"model": "mock/mock-1", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "'max_tokens' is required: a positive integer."},
        }
        row = await gateway.log_row(response.headers["alephant-request-id"])
        assert (row.http_status, row.error_code) == (400, "invalid_request_error")
        head = await http.head("/")
        assert head.status_code == 200


@pytest.fixture(scope="module")
def anthropic_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, FakeAnthropic]]:
    """A gateway whose `anthropic` provider is the fake Anthropic API: Messages in, Messages out."""
    with (
        FakeAnthropic() as fake,
        running_gateway(
            tmp_path_factory.mktemp("messages-to-anthropic"),
            providers={"anthropic": {"base_url": fake.base_url}},
            env={"ANTHROPIC_API_KEY": fake.api_key},
        ) as gw,
    ):
        yield gw, fake


async def test_messages_pass_through_natively_to_an_anthropic_upstream(
    anthropic_upstream: tuple[Gateway, FakeAnthropic],
) -> None:
    gateway, fake = anthropic_upstream
    system: Any = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0) as client:
        raw = await client.messages.with_raw_response.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=64,
            system=system,
            metadata={"user_id": "user-7"},
            messages=[{"role": "user", "content": "Hello there gateway"}],
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        )
        message = await raw.parse()
        sent = fake.last_request
        async with client.messages.stream(
            model="anthropic/claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "stream it"}]
        ) as stream:
            streamed = await stream.get_final_text()
            final = await stream.get_final_message()
    # Same dialect on both sides: the client's body goes up as sent (only the model rewritten), headers kept.
    assert sent.json["model"] == "claude-sonnet-4-5"
    assert sent.json["system"] == system, "cache_control survives: no translation on the way"
    assert sent.json["metadata"] == {"user_id": "user-7"}
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert message.content[0].type == "text" and message.content[0].text == "fake reply to: Hello there gateway"
    assert message.id.startswith("msg_") and not message.id.startswith("msg_chatcmpl")
    assert streamed == "fake reply to: stream it" and final.usage.output_tokens > 0
    row = await gateway.log_row(raw.headers["alephant-request-id"])
    assert (row.provider, row.upstream_model) == ("anthropic", "claude-sonnet-4-5")
    assert row.prompt_tokens == message.usage.input_tokens and row.completion_tokens == message.usage.output_tokens
    assert row.cost_nano > 0


async def test_count_tokens_is_exact_from_an_anthropic_upstream(
    anthropic_upstream: tuple[Gateway, FakeAnthropic],
) -> None:
    gateway, fake = anthropic_upstream
    async with anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0) as client:
        raw = await client.messages.with_raw_response.count_tokens(
            model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "count these tokens please"}]
        )
        counted = await raw.parse()
    assert raw.headers["alephant-token-count"] == "exact"
    assert fake.last_request.path.endswith("/messages/count_tokens")
    assert fake.last_request.json["model"] == "claude-sonnet-4-5" and "max_tokens" not in fake.last_request.json
    assert counted.input_tokens > 0
