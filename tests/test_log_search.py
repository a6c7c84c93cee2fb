"""Log search (`GET /v1/logs`, `alephant logs search`) and retention (`alephant logs prune`, `log.retention_days`)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from server.storage import Database, LogQuery, LogRow
from server.storage.log_search import LogSearch
from server.storage.schema import request_log
from tests.conftest import MASTER_KEY, Gateway, SDKFactory, running_gateway

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "search me"}]


async def _search(http: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await http.get("/v1/logs", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _eventually(http: httpx.AsyncClient, count: int, **params: str) -> list[dict[str, Any]]:
    for _ in range(100):
        rows = await _search(http, **params)
        if len(rows) >= count:
            return rows
        await anyio.sleep(0.05)
    raise AssertionError(f"expected {count} rows for {params}, got {len(rows)}")


async def test_filters_properties_and_pages(gateway: Gateway, sdk: SDKFactory) -> None:
    agent = f"searcher-{uuid.uuid4().hex[:8]}"
    base = {"Alephant-Agent-Id": agent, "Alephant-Run-Id": f"{agent}-run"}
    for index in range(5):
        headers = {**base, "Alephant-Session-Id": f"s{index % 2}", "Alephant-Property-Customer": f"c{index % 3}"}
        await sdk(default_headers=headers).chat.completions.create(model="mock/mock-1", messages=HELLO)
    with pytest.raises(Exception, match="429"):
        await sdk(default_headers=base).chat.completions.create(model="mock/mock-error-429", messages=HELLO)
    async with httpx.AsyncClient(base_url=gateway.base_url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        everything = await _eventually(http, 6, agent_id=agent)
        assert len(everything) == 6
        times = [row["created_at"] for row in everything]
        assert times == sorted(times, reverse=True)
        assert len(await _search(http, run_id=f"{agent}-run")) == 6
        assert len(await _search(http, agent_id=agent, session_id="s0")) == 3
        assert len(await _search(http, agent_id=agent, **{"property.customer": "c1"})) == 2
        assert len(await _search(http, agent_id=agent, **{"property.Customer": "c0"})) == 2  # names are any case
        assert len(await _search(http, agent_id=agent, model="mock/mock-1", provider="mock")) == 5
        errors = await _search(http, agent_id=agent, status="error")
        assert len(errors) == 1 and errors[0]["http_status"] == 429 and errors[0]["attempt_log"]
        assert len(await _search(http, agent_id=agent, status="429")) == 1
        assert len(await _search(http, agent_id=agent, status="ok")) == 5
        middle = everything[3]["created_at"]
        assert len(await _search(http, agent_id=agent, to=middle)) == 2
        assert len(await _search(http, agent_id=agent, **{"from": middle})) == 4

        pages, cursor = [], None
        while True:
            params = {"agent_id": agent, "limit": "4", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/v1/logs", params=params)).json()
            pages.append([row["request_id"] for row in page["data"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(page) for page in pages] == [4, 2]
        assert [i for page in pages for i in page] == [row["request_id"] for row in everything]

        for params, param in (({"status": "maybe"}, "status"), ({"property.bad name": "x"}, "property.bad name")):
            response = await http.get("/v1/logs", params=params)
            assert response.status_code == 400 and response.json()["error"]["param"] == param

    other = gateway.create_key("logs-other", "--workspace", f"ws-{agent}")
    async with httpx.AsyncClient(
        base_url=gateway.base_url, headers={"authorization": f"Bearer {other['secret']}"}
    ) as h:
        assert await _search(h, agent_id=agent) == []
    cli = json.loads(gateway.cli("logs", "search", "--agent", agent, "--status", "429", "--json").stdout)
    assert cli["http_status"] == 429 and cli["agent_id"] == agent
    found = gateway.cli("logs", "search", "--agent", agent, "--property", "customer=c2", "--json").stdout
    assert [json.loads(line)["properties"]["customer"] for line in found.splitlines()] == ["c2"]


def _old_row(n: int, workspace: str, age: timedelta) -> LogRow:
    return LogRow(
        request_id=f"old-{workspace}-{n}-{uuid.uuid4().hex[:6]}",
        created_at=datetime.now(UTC) - age,
        endpoint="chat",
        workspace_id=workspace,
    )


async def _insert(url: str, rows: list[LogRow]) -> None:
    async with Database(url) as db, db.engine.begin() as connection:
        await connection.execute(request_log.insert(), [dataclasses.asdict(row) for row in rows])


async def _count(url: str, **filters: Any) -> int:
    async with Database(url) as db:
        return await LogQuery(db).count(**filters)


async def test_prune_command_and_background_retention(tmp_path: Path) -> None:
    with running_gateway(tmp_path, config={"log": {"retention_days": 3, "retention_interval": 0.2}}) as gateway:
        url = gateway.database_url
        await _insert(
            url,
            [_old_row(n, "keep-ws", timedelta(days=1)) for n in range(3)]
            + [_old_row(n, "prune-ws", timedelta(days=2)) for n in range(4)]
            + [_old_row(n, "other-ws", timedelta(days=2)) for n in range(2)]
            + [_old_row(n, "ancient-ws", timedelta(days=10)) for n in range(7)],
        )
        # The background task (retention_days 3) removes the 10-day-old rows within its interval.
        for _ in range(100):
            if not await _count(url, workspace_id="ancient-ws"):
                break
            await anyio.sleep(0.1)
        assert await _count(url, workspace_id="ancient-ws") == 0
        assert await _count(url, workspace_id="prune-ws") == 4
        result = gateway.cli("logs", "prune", "--older-than", "36h", "--workspace", "prune-ws")
        assert "Deleted 4 request-log rows of workspace prune-ws" in result.stdout
        assert (await _count(url, workspace_id="prune-ws"), await _count(url, workspace_id="other-ws")) == (0, 2)
        assert await _count(url, workspace_id="keep-ws") == 3
        assert "Deleted 2" in gateway.cli("logs", "prune", "--older-than", "36h").stdout
        bad = gateway.cli("logs", "prune", "--older-than", "soon", check=False)
        assert bad.returncode != 0 and "--older-than" in bad.stderr


async def test_prune_deletes_in_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'batches.db'}"
    async with Database(url) as db:
        await db.migrate()
    await _insert(url, [_old_row(n, "w", timedelta(days=5)) for n in range(25)])
    async with Database(url) as db:
        removed = await LogSearch(db).prune(datetime.now(UTC) - timedelta(days=1), batch_rows=7)
    assert removed == 25 and await _count(url) == 0
