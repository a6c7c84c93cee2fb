"""Nothing lost: PostgreSQL stopped in the middle of 1,000 requests and started again → every request id stored once.

The test runs its own PostgreSQL (initdb into a temporary directory, on a free port), because stopping the shared
one would break every other suite running on this machine. PostgreSQL refuses to run as root, so as root the
server commands run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest
import sqlalchemy as sa

from server.storage import Database
from server.storage.schema import request_log
from tests.conftest import MASTER_KEY, free_port, running_gateway

pytestmark = pytest.mark.anyio

REQUESTS = 1_000
CONCURRENCY = 20


class PrivatePostgres:
    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, root / "data", port
        self.root = root
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    root = Path(tempfile.mkdtemp(prefix="alephant-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    server = PrivatePostgres(Path(found[-1]).parent, root, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _stored(url: str, prefix: str) -> tuple[int, int]:
    """(rows, distinct request ids) whose id starts with ``prefix``."""
    async with Database(url) as db, db.engine.connect() as connection:
        query = sa.select(sa.func.count(), sa.func.count(sa.distinct(request_log.c.request_id))).where(
            request_log.c.request_id.startswith(prefix)
        )
        rows, distinct = (await connection.execute(query)).one()
        return int(rows), int(distinct)


async def test_postgres_stopped_mid_load_loses_nothing(tmp_path: Path) -> None:
    prefix = "durable-"
    statuses: list[int] = []
    with private_postgres() as postgres:
        with running_gateway(tmp_path, database_url=postgres.url, store="postgres") as gw:
            sent = 0

            async def client(http: httpx.AsyncClient, group: anyio.abc.TaskGroup) -> None:
                nonlocal sent
                while sent < REQUESTS:
                    index = sent
                    sent += 1
                    response = await http.post(
                        "/v1/chat/completions",
                        json={"model": "mock/mock-1", "messages": [{"role": "user", "content": f"n{index}"}]},
                        headers={"Alephant-Request-Id": f"{prefix}{index:05d}"},
                    )
                    statuses.append(response.status_code)
                    if len(statuses) == REQUESTS // 4:  # stop PostgreSQL while requests keep coming
                        group.start_soon(anyio.to_thread.run_sync, postgres.stop)
                    elif len(statuses) == REQUESTS * 3 // 5:
                        group.start_soon(anyio.to_thread.run_sync, postgres.start)

            headers = {"authorization": f"Bearer {MASTER_KEY}"}
            async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=30) as http:
                async with anyio.create_task_group() as group:
                    for _ in range(CONCURRENCY):
                        group.start_soon(client, http, group)
                assert statuses == [200] * REQUESTS  # the request path never waited for the store
                # A request once PostgreSQL is back: its write replays what is still spooled.
                await http.post(
                    "/v1/chat/completions",
                    json={"model": "mock/mock-1", "messages": [{"role": "user", "content": "x"}]},
                )
            for _ in range(100):
                if await _stored(postgres.url, prefix) == (REQUESTS, REQUESTS):
                    break
                await anyio.sleep(0.1)
            assert await _stored(postgres.url, prefix) == (REQUESTS, REQUESTS)
        # The outage was real (rows went to the spool), and a graceful shutdown added no duplicate.
        assert "database unavailable" in (tmp_path / "server.log").read_text()
        assert await _stored(postgres.url, prefix) == (REQUESTS, REQUESTS)
