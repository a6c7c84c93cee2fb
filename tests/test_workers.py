"""`alephant serve --workers 2`: both workers serve, share the PostgreSQL store, and log every request once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.storage import Database, LogQuery
from tests._databases import drop_postgres, fresh_postgres_url
from tests.conftest import MASTER_KEY, ROOT, free_port


def test_two_workers_share_the_store(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_")}
    env.update(
        PYTHONPATH=str(ROOT),
        ALEPHANT_DATABASE_URL=url,
        ALEPHANT_MASTER_KEY=MASTER_KEY,
        ALEPHANT_DATA_DIR=str(tmp_path / "data"),
        ALEPHANT_LOG__FLUSH_INTERVAL="0.02",
        ALEPHANT_REDIS_URL="redis://127.0.0.1:6379/0",  # several workers need shared limit counters
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--quiet", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
            ids = []
            for index in range(40):
                response = http.post(
                    "/v1/chat/completions",
                    json={"model": "mock/mock-1", "messages": [{"role": "user", "content": f"n{index}"}]},
                    headers={"authorization": f"Bearer {MASTER_KEY}"},
                )
                assert response.status_code == 200
                ids.append(response.headers["alephant-request-id"])
        # Each worker claims its own spool slot: no two processes append to one file.
        spool = tmp_path / "data" / "spool"
        deadline = time.monotonic() + 15
        while sorted(p.name for p in spool.iterdir()) != ["0", "1"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(p.name for p in spool.iterdir()) == ["0", "1"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    try:
        counts = asyncio.run(_counts(url, ids))
        assert counts == ([1] * 40, 40)
    finally:
        drop_postgres(url)


async def _counts(url: str, ids: list[str]) -> tuple[list[int], int]:
    async with Database(url) as database:
        query = LogQuery(database)
        return [await query.count(request_id=i) for i in ids], await query.count()
