"""Stored Responses answers: `store` (default true), `previous_response_id` and `GET /v1/responses/{id}`,
through the real server with the official openai SDK, on both stores."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import Gateway, SDKFactory
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.anyio

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def test_stored_answer_can_be_retrieved(gateway: Gateway, sdk: SDKFactory) -> None:
    client = sdk()
    created = await client.responses.create(model="mock/mock-1", input="remember this answer")
    assert created.store is True
    fetched = await client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == "Mock reply to: remember this answer"


async def test_continuation_sends_the_earlier_conversation_upstream(
    gateway: Gateway, sdk: SDKFactory, fake_upstream: FakeOpenAI
) -> None:
    client = sdk()
    first = await client.responses.create(model="fake/gpt-4o-mini", input="My name is Ada", instructions="Be kind.")
    second = await client.responses.create(
        model="fake/gpt-4o-mini", input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    sent = fake_upstream.last_request.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"], "instructions are not carried over"
    assert sent[0]["content"] == "My name is Ada" and sent[1]["content"] == first.output_text
    assert sent[2]["content"] == "What is my name?"


async def test_streamed_answer_is_stored_and_function_calls_continue(gateway: Gateway, sdk: SDKFactory) -> None:
    client = sdk()
    stream = await client.responses.create(
        model="mock/mock-1",
        input='Weather? [[tool:get_weather {"city": "Paris"}]]',
        tools=[WEATHER],
        stream=True,
    )
    completed = [event async for event in stream if event.type == "response.completed"]
    first = completed[0].response
    call = next(item for item in first.output if item.type == "function_call")
    answer = await client.responses.create(
        model="mock/mock-1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}],
        tools=[WEATHER],
    )
    assert answer.output_text == "Tool results: 18C"
    assert (await client.responses.retrieve(first.id)).output[0].type == "function_call"


async def test_store_false_keeps_nothing(gateway: Gateway, sdk: SDKFactory) -> None:
    client = sdk()
    created = await client.responses.create(model="mock/mock-1", input="forget me", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.retrieve(created.id)
    assert missing.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="mock/mock-1", input="x", previous_response_id=created.id)


async def test_other_workspaces_cannot_read_it(gateway: Gateway, sdk: SDKFactory) -> None:
    created = await sdk().responses.create(model="mock/mock-1", input="private")
    outsider = gateway.create_key("outsider", "--workspace", "elsewhere")["secret"]
    with pytest.raises(openai.NotFoundError):
        await sdk(outsider).responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await sdk(outsider).responses.create(model="mock/mock-1", input="x", previous_response_id=created.id)


async def test_stored_answers_survive_a_restart_of_memory(gateway: Gateway, sdk: SDKFactory) -> None:
    """The store, not only the process's memory, holds the answer: read it back with the storage layer."""
    from server.storage import Database, ResponseStore

    created = await sdk().responses.create(model="mock/mock-1", input="written through")
    async with Database(gateway.database_url) as database:
        for _ in range(50):
            stored = await ResponseStore(database).get(created.id, workspace_id="default")
            if stored is not None:
                break
            import anyio

            await anyio.sleep(0.05)
    assert stored is not None and stored.response["id"] == created.id
    assert stored.items[0] == {"type": "message", "role": "user", "content": "written through"}
