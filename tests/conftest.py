"""Shared fixtures: a real gateway server (uvicorn in a subprocess) per store, and a fake OpenAI upstream.

Every end-to-end test takes ``gateway``, which is parametrized over both stores: the embedded SQLite file and
the real PostgreSQL on 127.0.0.1 (a fresh database per test session, dropped at the end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from server.storage import Database, LogQuery, LogRow
from tests._databases import drop_postgres, fresh_postgres_url, sqlite_url
from tests.fakes.openai_upstream import FakeOpenAI

MASTER_KEY = "alk_master_test_0123456789abcdefghijklmnop"
FAKE_KEY_ENV = "ALEPHANT_TEST_FAKE_KEY"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


# Both event loops the gateway runs on (uvloop's transports are not asyncio's classes), for the modules whose own
# protocol code must work on each: ``@pytest.fixture(params=BOTH_LOOPS) def anyio_backend(request): ...``.
BOTH_LOOPS = [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@dataclasses.dataclass
class Gateway:
    """A running gateway: its URL, store, and helpers that act on it the way a user would."""

    base_url: str
    database_url: str
    env: dict[str, str]
    config_path: Path
    process: subprocess.Popen[bytes]
    store: str

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "server", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"alephant {' '.join(args)} failed: {result.stderr}")
        return result

    def create_key(self, name: str = "test", *extra: str) -> dict[str, Any]:
        """Create a key with the CLI and wait until the server's snapshot has it."""
        created: dict[str, Any] = json.loads(self.cli("keys", "create", "--name", name, "--json", *extra).stdout)
        self.wait_key(created["secret"], accepted=True)
        return created

    def wait_key(self, secret: str, *, accepted: bool, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = httpx.get(self.api_url + "/models", headers={"authorization": f"Bearer {secret}"}).status_code
            if (status == 200) == accepted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"key not {'accepted' if accepted else 'rejected'} after {timeout}s")
            time.sleep(0.05)

    async def log_rows(self, request_id: str, *, timeout: float = 5.0) -> list[LogRow]:
        """All log rows of one request, waiting for the batch writer to write the first."""
        async with Database(self.database_url) as database:
            query = LogQuery(database)
            deadline = time.monotonic() + timeout
            while True:
                row = await query.get(request_id)
                if row is not None:
                    count = await query.count(request_id=request_id)
                    return [row] * count
                if time.monotonic() > deadline:
                    raise AssertionError(f"no log row for {request_id} after {timeout}s")
                await _sleep(0.05)

    async def log_row(self, request_id: str) -> LogRow:
        rows = await self.log_rows(request_id)
        assert len(rows) == 1, f"expected exactly one log row for {request_id}, found {len(rows)}"
        return rows[0]


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


@contextlib.contextmanager
def running_gateway(
    tmp: Path,
    *,
    providers: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    database_url: str | None = None,
    store: str = "sqlite",
) -> Iterator[Gateway]:
    """A real gateway (``python -m server serve``) on a free port, stopped on exit.

    ``providers`` is the ``providers:`` section of alephant.yaml (a built-in id overrides that row's fields,
    e.g. ``{"anthropic": {"base_url": fake.base_url}}``); ``env`` adds environment variables (provider keys).
    """
    port = free_port()
    config_path = tmp / "alephant.yaml"
    config_path.write_text(yaml.safe_dump({"providers": providers or {}, **(config or {})}))
    database_url = database_url or f"sqlite:///{tmp / 'alephant.db'}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_") and not k.endswith("_API_KEY")}
    full_env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ALEPHANT_CONFIG": str(config_path),
            "ALEPHANT_DATABASE_URL": database_url,
            "ALEPHANT_DATA_DIR": str(tmp / "data"),
            "ALEPHANT_MASTER_KEY": MASTER_KEY,
            "ALEPHANT_PORT": str(port),
            "ALEPHANT_KEY_REFRESH_INTERVAL": "0.1",
            "ALEPHANT_LOG__FLUSH_INTERVAL": "0.02",
            **(env or {}),
        }
    )
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--quiet"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # generous: a loaded CI machine starts slowly
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited: {log_path.read_text()}")
            try:
                if httpx.get(base_url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield Gateway(base_url, database_url, full_env, config_path, process, store)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    store: str = request.param
    tmp = tmp_path_factory.mktemp(f"gateway-{store}")
    database_url = fresh_postgres_url() if store == "postgres" else f"sqlite:///{tmp / 'alephant.db'}"
    providers = {
        "fake": {
            "base_url": fake_upstream.base_url,
            "api_key_env": FAKE_KEY_ENV,
            "models": ["gpt-4o-mini", "gpt-4o"],
            "embedding_models": ["text-embedding-3-small"],
        },
        "down": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "models": ["any"]},
    }
    config = {"aliases": {"fast": "mock/mock-1"}, "upstream": {"timeout": 3}}
    try:
        with running_gateway(
            tmp,
            providers=providers,
            config=config,
            env={FAKE_KEY_ENV: fake_upstream.api_key, "ALEPHANT_MAX_BODY_BYTES": str(64 * 1024)},
            database_url=database_url,
            store=store,
        ) as gw:
            yield gw
    finally:
        if store == "postgres":
            drop_postgres(database_url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, unmigrated store per module on each dialect: an SQLite file, or a PostgreSQL database dropped after."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("sqlite"))
        return
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        drop_postgres(url)


SDKFactory = Callable[..., openai.AsyncOpenAI]


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[SDKFactory]:
    """``sdk(key=..., base_url=..., **options)`` makes an official AsyncOpenAI client, closed after the test."""
    made: list[openai.AsyncOpenAI] = []

    def make(key: str | None = MASTER_KEY, base_url: str | None = None, **options: Any) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=base_url or gateway.api_url, api_key=key if key is not None else "", max_retries=0, **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
