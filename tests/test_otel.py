"""OpenTelemetry export: a real gateway sends OTLP/HTTP protobuf spans to a receiver that decodes them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, running_gateway
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

HELLO = [{"role": "user", "content": "trace me"}]
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as fake:
        yield fake


def wait_for(receiver: OtlpReceiver, found: Callable[[list[ReceivedSpan]], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not found(receiver.spans):
        assert time.monotonic() < deadline, f"spans not received; got {[s.name for s in receiver.spans]}"
        time.sleep(0.1)


def by_request(spans: list[ReceivedSpan], request_id: str) -> ReceivedSpan:
    [span] = [s for s in spans if s.attributes.get("alephant.request_id") == request_id]
    return span


def test_request_and_attempt_spans_carry_genai_and_alephant_attributes(tmp_path: Path, receiver: OtlpReceiver) -> None:
    config = {"otel": {"endpoint": receiver.root_url, "service_name": "gw-test"}}
    env = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # the batch processor exports every 0.1 s instead of 5 s
    with running_gateway(tmp_path, config=config, env=env) as gateway:
        denied = gateway.create_key("narrow", "--deny-models", "mock/mock-slow-*")
        client = openai.OpenAI(base_url=gateway.api_url, api_key=MASTER_KEY, max_retries=0)
        headers = {
            "Alephant-Agent-Id": "planner",
            "Alephant-Run-Id": "run_42",
            "Alephant-Session-Id": "sess_7",
            "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01",
        }
        reply = client.chat.completions.with_raw_response.create(
            model="mock/mock-1", messages=HELLO, extra_headers=headers
        )
        ok_id = reply.headers["alephant-request-id"]
        completion = reply.parse()
        with client.chat.completions.with_streaming_response.create(
            model="mock/mock-1", messages=HELLO, stream=True
        ) as streamed:
            stream_id = streamed.headers["alephant-request-id"]
            for _ in streamed.iter_lines():
                pass
        failed = httpx.post(
            gateway.api_url + "/chat/completions",
            json={"model": "mock/mock-error-503", "messages": HELLO},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        refused = httpx.post(
            gateway.api_url + "/chat/completions",
            json={"model": "mock/mock-slow-1", "messages": HELLO},
            headers={"authorization": f"Bearer {denied['secret']}"},
        )
        assert (failed.status_code, refused.status_code) == (502, 403)
        ids = [ok_id, stream_id, failed.headers["alephant-request-id"], refused.headers["alephant-request-id"]]
        wait_for(receiver, lambda spans: {s.attributes.get("alephant.request_id") for s in spans} >= set(ids))
        spans = receiver.spans

    ok = by_request(spans, ok_id)
    assert ok.name == "chat mock/mock-1"
    assert ok.kind == 2  # SERVER
    assert ok.resource["service.name"] == "gw-test"
    assert completion.usage is not None
    assert {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "mock",
        "gen_ai.system": "mock",
        "gen_ai.request.model": "mock/mock-1",
        "gen_ai.response.model": "mock-1",
        "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
        "alephant.agent_id": "planner",
        "alephant.run_id": "run_42",
        "alephant.session_id": "sess_7",
        "alephant.workspace_id": "default",
        "alephant.key_id": "master",
        "http.response.status_code": 200,
    }.items() <= ok.attributes.items()
    assert ok.attributes["alephant.cost_nano_usd"] > 0
    assert ok.attributes["alephant.cost_usd"].startswith("0.0000")
    # The client's traceparent makes the request span a child of the client's span.
    assert (ok.trace_id, ok.parent_span_id) == (CLIENT_TRACE, CLIENT_PARENT)
    assert ok.end_ns > ok.start_ns
    [attempt] = [s for s in spans if s.parent_span_id == ok.span_id]
    assert attempt.kind == 3  # CLIENT
    assert attempt.attributes["gen_ai.provider.name"] == "mock"
    assert attempt.attributes["alephant.attempt"] == 1
    assert ok.start_ns <= attempt.start_ns <= attempt.end_ns <= ok.end_ns

    streamed_span = by_request(spans, stream_id)
    assert streamed_span.attributes["alephant.stream"] is True
    assert streamed_span.attributes["gen_ai.usage.output_tokens"] > 0
    assert streamed_span.trace_id != CLIENT_TRACE and streamed_span.parent_span_id == ""

    error = by_request(spans, ids[2])
    assert error.status_code == 2  # ERROR
    assert error.attributes["http.response.status_code"] == 502 and error.attributes["error.type"]
    [failed_attempt] = [s for s in spans if s.parent_span_id == error.span_id]
    assert failed_attempt.status_code == 2 and failed_attempt.attributes["http.response.status_code"] == 503

    denial = by_request(spans, ids[3])
    assert denial.attributes["http.response.status_code"] == 403
    assert denial.attributes["alephant.key_id"] == denied["id"]
    policy = [attrs for name, attrs in denial.events if name == "alephant.policy"]
    assert any(e["alephant.policy.decision"] == "deny" and "deny_models" in e["alephant.policy.rule"] for e in policy)


def test_standard_endpoint_variable_and_shutdown_flush(tmp_path: Path, receiver: OtlpReceiver) -> None:
    # No setting: the standard variable turns export on; the default 5 s batch delay is never waited out,
    # because stopping the gateway flushes the batch processor.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.root_url}
    with running_gateway(tmp_path, env=env) as gateway:
        reply = httpx.post(
            gateway.api_url + "/chat/completions",
            json={"model": "mock/mock-1", "messages": HELLO},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert reply.status_code == 200
        assert receiver.spans == []
    by_request(receiver.spans, reply.headers["alephant-request-id"])


def test_off_by_default(tmp_path: Path, receiver: OtlpReceiver) -> None:
    with running_gateway(tmp_path) as gateway:
        reply = httpx.post(
            gateway.api_url + "/chat/completions",
            json={"model": "mock/mock-1", "messages": HELLO},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert reply.status_code == 200
    assert receiver.requests == []
