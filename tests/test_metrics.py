"""Prometheus `/metrics`: the text format parsed, per-request observations, bounded labels, and several workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, ROOT, Gateway, SDKFactory, free_port

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "count me"}]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    response = httpx.get(base_url + "/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


async def test_requests_tokens_cost_latency_and_errors_are_counted(gateway: Gateway, sdk: SDKFactory) -> None:
    before = scrape(gateway.base_url)
    client = sdk()
    replies = [await client.chat.completions.create(model="mock/mock-1", messages=HELLO) for _ in range(3)]
    stream = await client.chat.completions.create(model="mock/mock-1", messages=HELLO, stream=True)
    async for _ in stream:
        pass
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="mock/mock-error-503", messages=HELLO)
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="mock/invented-model-name", messages=HELLO)
    await _settle()
    after = scrape(gateway.base_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"endpoint": "chat", "provider": "mock", "model": "mock/mock-1"}
    assert delta("alephant_requests_total", **ok, status="200") == 4
    assert delta("alephant_request_latency_seconds_count", **ok) == 4
    assert delta("alephant_time_to_first_byte_seconds_count", **ok) == 4
    prompt = sum(reply.usage.prompt_tokens for reply in replies if reply.usage)
    assert delta("alephant_tokens_total", provider="mock", model="mock/mock-1", type="prompt") == prompt * 4 / 3
    assert delta("alephant_cost_nano_usd_total", provider="mock", model="mock/mock-1") > 0
    # Model names the catalog does not list are "other": a client cannot grow the label set.
    assert delta("alephant_requests_total", provider="mock", model="other", status="502") == 1
    assert delta("alephant_upstream_errors_total", provider="mock") >= 1
    assert not any("invented" in str(labels) for _, labels in after)


async def _settle() -> None:
    import anyio

    await anyio.sleep(0.1)  # a stream is committed when its generator closes, just after the last chunk


def test_two_workers_add_up(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEPHANT_", "PROMETHEUS_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        ALEPHANT_DATABASE_URL=url,
        ALEPHANT_MASTER_KEY=MASTER_KEY,
        ALEPHANT_DATA_DIR=str(tmp_path / "data"),
        ALEPHANT_REDIS_URL="redis://127.0.0.1:6379/0",  # several workers need shared limit counters
    )
    stale = tmp_path / "data" / "metrics"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"left over from an earlier run")
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--quiet", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

        # A new connection per request, so both workers take some of them. /health/ready answers as soon as one
        # worker is up; the other may still be starting, so send in rounds until both have served (and counted).
        def pids() -> set[str]:
            return {path.stem.rpartition("_")[2] for path in (tmp_path / "data" / "metrics").glob("counter_*.db")}

        sent = 0
        with httpx.Client(base_url=base, limits=httpx.Limits(max_keepalive_connections=0), timeout=10) as http:
            while sent < 60 or (len(pids()) < 2 and time.monotonic() < deadline + 30):
                response = http.post(
                    "/v1/chat/completions",
                    json={"model": "mock/mock-1", "messages": HELLO},
                    headers={"authorization": f"Bearer {MASTER_KEY}"},
                )
                assert response.status_code == 200
                sent += 1
        assert len(pids()) == 2, pids()  # both workers served, and the stale file was cleared at start
        for _ in range(3):  # whichever worker answers the scrape, it reports both workers' counts
            samples = scrape(base)
            assert value(samples, "alephant_requests_total", model="mock/mock-1", status="200") == sent
            assert value(samples, "alephant_request_latency_seconds_count", model="mock/mock-1") == sent
    finally:
        server.terminate()
        server.wait(timeout=20)
        drop_postgres(url)
