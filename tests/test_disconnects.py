"""A client that hangs up on a stream still gets its call committed: log row, budget, in-flight count.

The reply stream is a chain of generators whose ``finally`` clauses write the log row, commit the budget
reservation and release the in-flight count. A disconnect cancels the relay inside a cancelled scope, where
every ``await`` of those clauses is cancelled again unless shielded: the budget commit would be lost (its
reservation left to expire, its spend never counted). And a generator closed before it started runs none of
them. The mock provider here sends its chunks 150 ms apart, so the client leaves mid-stream.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import MASTER_KEY, running_gateway

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def _hang_up_early(port: int, request_id: str) -> None:
    words = " ".join(["word"] * 20)
    body = orjson.dumps({"model": "mock/mock-1", "stream": True, "messages": [{"role": "user", "content": words}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {MASTER_KEY}\r\n"
        f"content-type: application/json\r\nalephant-request-id: {request_id}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the headers and the first chunk, then hang up


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_stream_abandoned_midway_is_logged_and_commits_its_budget(tmp_path: Path, backend: str) -> None:
    env = {}
    if backend == "redis":  # the Redis commit is a real await: the one a cancelled scope cancels again
        env = {
            "ALEPHANT_REDIS_URL": "redis://127.0.0.1:6379/0",
            "ALEPHANT_LIMITS__REDIS_PREFIX": f"t-dc-{os.getpid()}:",
        }
    with running_gateway(tmp_path, config={"mock": {"chunk_delay_ms": 150}}, env=env) as gateway:
        budget = httpx.post(
            gateway.base_url + "/admin/budgets",
            headers=ADMIN,
            json={"scope": "workspace", "period": "total", "limit_usd": "100"},
        )
        assert budget.status_code == 201, budget.text
        budget_url = f"{gateway.base_url}/admin/budgets/{budget.json()['id']}"
        time.sleep(0.3)  # the limits snapshot reloads every key_refresh_interval (0.1 s here)
        port = int(gateway.base_url.rsplit(":", 1)[1])
        for index in range(3):
            _hang_up_early(port, f"req-early-{index}")
        deadline = time.monotonic() + 5
        while True:
            current = httpx.get(budget_url, headers=ADMIN).json()["current"]
            if (current["reserved_nano"] == 0 and current["spent_nano"] > 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert current["reserved_nano"] == 0, current  # every reservation was committed, none left to expire
        assert current["spent_nano"] > 0  # what the abandoned calls cost upstream was counted
        rows = httpx.get(f"{gateway.base_url}/v1/logs?status=client_disconnected&limit=10", headers=ADMIN).json()[
            "data"
        ]
        assert {f"req-early-{index}" for index in range(3)} <= {row["request_id"] for row in rows}
        # The rows are priced after the inner stream set the usage relayed so far: what the log says they cost is
        # what the budget counted, to the nano-dollar.
        assert (
            sum(row["cost_nano"] for row in rows if row["request_id"].startswith("req-early-")) == current["spent_nano"]
        )
        health = httpx.get(gateway.base_url + "/health/providers", headers=ADMIN).json()
        assert all(row["in_flight"] == 0 for row in health["deployments"])
