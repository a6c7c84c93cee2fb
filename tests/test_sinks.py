"""Webhook sinks: log rows delivered in batches, in order, exactly once, after the sink was down for a while.

The outage lasts a few seconds here (not 30): what matters is that delivery fails, backs off and resumes,
which the backoff cap (0.5 s in these tests) makes happen many times within that window.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from server.storage import LogRow
from server.telemetry.sinks import REJECTED_FILE, Sink
from tests.conftest import MASTER_KEY, Gateway, free_port, running_gateway
from tests.fakes.webhook_receiver import WebhookReceiver

OUTAGE_SECONDS = 3.0


def send(gateway: Gateway, count: int) -> list[str]:
    ids = []
    with httpx.Client(timeout=10) as http:
        for n in range(count):
            reply = http.post(
                gateway.api_url + "/chat/completions",
                json={"model": "mock/mock-1", "messages": [{"role": "user", "content": f"event {n}"}]},
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            )
            assert reply.status_code == 200
            ids.append(reply.headers["alephant-request-id"])
    return ids


def wait_events(receiver: WebhookReceiver, count: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(receiver.events) < count:
        assert time.monotonic() < deadline, f"{len(receiver.events)} of {count} events delivered"
        time.sleep(0.05)
    return [event["request_id"] for event in receiver.events]


def test_a_sink_that_was_down_receives_everything_in_order_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    receiver = WebhookReceiver(port=port)
    sink = {
        "url": f"http://127.0.0.1:{port}/ingest",
        "name": "audit",
        "batch_size": 7,
        "flush_interval": 0.1,
        "max_backoff": 0.5,
        "headers": {"authorization": "Bearer sink-token"},
    }
    config = {"sinks": [sink]}
    try:
        with running_gateway(tmp_path, config=config) as gateway:
            # Down from the start, for a few seconds, while requests keep coming.
            sent = send(gateway, 15)
            time.sleep(OUTAGE_SECONDS)
            sent += send(gateway, 10)
            spool = tmp_path / "data" / "sinks" / "audit" / "0" / "events.jsonl"
            deadline = time.monotonic() + 5
            while not spool.exists() or len(spool.read_bytes().splitlines()) < 25:  # spilled every flush_interval
                assert time.monotonic() < deadline
                time.sleep(0.05)
            receiver.start()
            assert wait_events(receiver, 25) == sent
            assert all(1 <= len(batch) <= 7 for batch in receiver.requests)
            assert receiver.headers[0]["Authorization"] == "Bearer sink-token"
            # Down again, and the gateway stops meanwhile: the rows wait on disk for the next start.
            receiver.stop()
            sent += send(gateway, 6)
        assert len(receiver.events) == 25
        receiver.start()
        # A flush interval longer than the test: only start-up delivers the spool, only shutdown the new rows.
        config = {"sinks": [{**sink, "flush_interval": 60}]}
        with running_gateway(tmp_path, config=config) as gateway:
            assert wait_events(receiver, 31) == sent
            sent += send(gateway, 3)
            time.sleep(0.3)
            assert len(receiver.events) == 31
        assert wait_events(receiver, 34, timeout=1) == sent
        event = receiver.events[0]
        assert event["model"] == "mock/mock-1" and event["status"] == "ok" and event["cost_nano"] > 0
    finally:
        receiver.stop()


@pytest.mark.anyio
async def test_a_refused_batch_is_set_aside_and_the_rest_delivered(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        sink = Sink(receiver.url, directory=tmp_path, batch_size=2, flush_interval=0.05, rng=random.Random(1))
        sink.start()
        receiver.status = 400
        rows = [LogRow(request_id=f"req_{n}", created_at=datetime.now(UTC), endpoint="chat") for n in range(4)]
        sink.submit(rows[0])
        sink.submit(rows[1])
        deadline = time.monotonic() + 5
        while sink.rejected < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        receiver.status = 200
        sink.submit(rows[2])
        sink.submit(rows[3])
        await sink.stop()
    assert [e["request_id"] for e in receiver.events] == ["req_2", "req_3"]
    assert "req_0" in (tmp_path / REJECTED_FILE).read_text()
    assert sink.delivered == 2 and sink.backlog() == 0
