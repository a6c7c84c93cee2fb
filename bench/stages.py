"""Microseconds per pipeline stage on the governed path, in-process: no HTTP, no upstream socket, no wrk.

    python -m bench.stages                 # 4 columns × 5 rounds × 400 calls, Redis on 127.0.0.1:6379
    python -m bench.stages --calls 100     # fewer calls per round

The throughput scenarios say how fast the whole gateway is; this says which stage the governed path's own time
goes to, and what the limiter adds per call on each backend. It builds the services exactly as ``server/app.py``
does (``services_lifespan`` over a temporary SQLite store), folds ``STAGES`` around ``dispatch`` with a timer
between every two stages, and sends non-streamed chat calls for the built-in ``mock/mock-1`` (answered in
process), one at a time, through ``Call.internal`` with a virtual key. Columns:

- no rules / 3 rules: a key in a workspace without limit rules, or in one with a monthly budget, an rpm limit and
  a concurrency limit (all out of reach, so every call is admitted and committed);
- in-process / Redis: the limiter's backend (``redis_url`` unset or set; Redis keys under a prefix of their own,
  deleted afterwards).

A stage's time is its own: the time inside it minus the time inside the stages it wraps, per call; the table shows
the median over every call (and the mean). It is wall time, so an await on Redis counts, and so does the log
writer's background flush when it runs during a call (that is what the mean shows). Each stage's figure also
carries one timer wrapper (the line under the table measures it). Columns are measured in alternating rounds so
that a neighbour's load on the shared cores spreads over all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
import uvloop
from pydantic import SecretStr

from bench import governance
from providers.ingress import dialect
from server.app import services_lifespan
from server.call import Call, Reply
from server.config import LimitsSettings, Settings
from server.limits import LimitStore
from server.pipeline import Handler, StageFactory, build_pipeline
from server.services import Services
from server.stages import STAGES, dispatch
from server.storage import KeyStore, LogWriter
from server.storage.governance import GovernanceStore

MASTER_KEY = "alk_master_stages_0123456789abcdefghijkl"
BODY = b'{"model":"mock/mock-1","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
_OPENAI = dialect("openai")


@dataclass
class Timings:
    """Nanoseconds spent inside each stage (inclusive of what it wraps), one entry per call."""

    names: list[str]
    inside: dict[str, list[int]] = field(default_factory=dict)

    def own(self) -> dict[str, list[int]]:
        """Per call, each stage's time minus the time of the stage it wraps."""
        own: dict[str, list[int]] = {}
        for outer, inner in zip(self.names, [*self.names[1:], None], strict=True):
            spans = self.inside[outer]
            own[outer] = [a - b for a, b in zip(spans, self.inside[inner], strict=True)] if inner else list(spans)
        own["total"] = list(self.inside[self.names[0]])
        return own


def _timed(name: str, inner: Handler, timings: Timings) -> Handler:
    spans = timings.inside.setdefault(name, [])
    clock = time.perf_counter_ns

    async def handler(call: Call) -> Reply:
        started = clock()
        try:
            return await inner(call)
        finally:
            spans.append(clock() - started)

    return handler


def _stage_name(factory: object) -> str:
    """``AgentContextStage`` -> ``agent_context``, as ``server.pipeline`` names the stages."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", getattr(factory, "__name__", "Stage").removesuffix("Stage")).lower()


def timed_pipeline(services: Services, timings: Timings) -> Handler:
    """``build_pipeline(STAGES, dispatch, services)`` with a timer around every stage and the terminal."""

    def timed_stage(factory: StageFactory) -> StageFactory:
        name = _stage_name(factory)
        timings.names.append(name)

        def build(next: Handler, services: Services) -> Handler:
            return _timed(name, factory(next, services), timings)

        return build

    stages = [timed_stage(factory) for factory in STAGES]
    timings.names.append("dispatch")
    return build_pipeline(stages, lambda found: _timed("dispatch", dispatch(found), timings), services)


@dataclass
class Column:
    """One configuration under measurement: its pipeline, its key, and the timings it collected."""

    title: str
    pipeline: Handler
    secret: str
    timings: Timings
    writer: LogWriter
    log_ns: int = 0  # writing the measured calls' log rows, after each round
    cpu_ns: int = 0  # the process's CPU time over the measured calls (Redis's own CPU is not in it)
    measured: int = 0

    async def calls(self, count: int, *, measured: bool = True) -> None:
        headers = {"authorization": f"Bearer {self.secret}", "content-type": "application/json"}
        cpu = time.process_time_ns()
        for _ in range(count):
            call = Call.internal(
                headers=headers, body=BODY, endpoint="chat", dialect=_OPENAI, path="/v1/chat/completions"
            )
            reply = await self.pipeline(call)
            if reply.status != 200:
                raise SystemExit(f"{self.title}: the gateway answered {reply.status}: {reply.body[:300]!r}")
        if measured:
            self.cpu_ns += time.process_time_ns() - cpu
            self.measured += count
        started = time.perf_counter_ns()
        await self.writer.flush()
        if measured:
            self.log_ns += time.perf_counter_ns() - started


async def _tenants(services: Services) -> tuple[str, str]:
    """A key in a workspace without rules and one in a workspace with a budget, an rpm and a concurrency limit."""
    workspaces, keys, rules = (
        GovernanceStore(services.database),
        KeyStore(services.database),
        LimitStore(services.database),
    )
    secrets = []
    for workspace in (governance.OPEN, governance.LIMITED):
        await workspaces.create_workspace(id=workspace, name=workspace)
        secrets.append((await keys.create(name="stages", workspace_id=workspace, models=["mock/*"]))[1])
    await rules.create_budget(
        workspace_id=governance.LIMITED,
        scope="workspace",
        scope_id=None,
        period="monthly",
        limit_nano=int(governance.BUDGET_USD) * 10**9,
        mode="hard",
        time_zone="UTC",
    )
    for kind, limit in (("rpm", governance.RPM), ("concurrency", governance.CONCURRENCY)):
        await rules.create_limit(
            workspace_id=governance.LIMITED, scope="workspace", scope_id=None, kind=kind, limit=limit
        )
    await services.keyring.load()
    await services.limiter.snapshot.load()
    return secrets[0], secrets[1]


@contextlib.asynccontextmanager
async def _columns(backend: str, work: Path, redis: tuple[str, str] | None) -> AsyncIterator[list[Column]]:
    settings = Settings(
        data_dir=work / backend,
        database_url=f"sqlite:///{work / backend}.db",
        master_key=SecretStr(MASTER_KEY),
        redis_url=SecretStr(redis[0]) if redis else None,
        limits=LimitsSettings(redis_prefix=redis[1]) if redis else LimitsSettings(),
    )
    async with services_lifespan(settings) as services:
        open_key, limited_key = await _tenants(services)
        # The pipelines submit to a writer whose background task is not started: its rows are written by
        # ``Column.calls`` between rounds, timed apart. Written during the calls, a flush (and aiosqlite's thread
        # taking the GIL) would land on whichever call happens to await Redis.
        writer = LogWriter(
            services.database,
            spool_dir=work / f"spool-{backend}",
            max_queue=1_000_000,
            batch_size=settings.log.batch_size,
        )
        held = dataclasses.replace(services, log_writer=writer)
        found = []
        for rules, secret in (("no rules", open_key), ("3 rules", limited_key)):
            timings = Timings(names=[])
            found.append(Column(f"{rules}, {backend}", timed_pipeline(held, timings), secret, timings, writer))
        yield found


async def _wrapper_cost(count: int = 20_000) -> float:
    """Microseconds one timer wrapper adds to a call (each stage's figure carries one)."""

    async def nothing(call: Call) -> Reply:
        return Reply()

    timings = Timings(names=["x"])
    wrapped: Callable[[Call], Awaitable[Reply]] = _timed("x", nothing, timings)
    call = Call.internal(headers={}, body=b"", endpoint="chat", dialect=_OPENAI, path="/")
    started = time.perf_counter_ns()
    for _ in range(count):
        await nothing(call)
    bare = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    for _ in range(count):
        await wrapped(call)
    return (time.perf_counter_ns() - started - bare) / count / 1000


async def _redis_round_trip(url: str, count: int = 2_000) -> float:
    """Median microseconds of one PING through ``redis.asyncio``: the floor under each limits backend call."""
    client = aioredis.Redis.from_url(url)
    try:
        spans = []
        for _ in range(count):
            started = time.perf_counter_ns()
            await cast(Awaitable[bool], client.ping())
            spans.append(time.perf_counter_ns() - started)
    finally:
        await client.aclose()
    return statistics.median(spans) / 1000


def _cell(values: list[int], drop: int) -> str:
    kept = values[drop:]
    return f"{statistics.median(kept) / 1000:7.1f} ({statistics.fmean(kept) / 1000:6.1f})"


def table(columns: list[Column], drop: int) -> str:
    """Markdown: one row per stage, one column per configuration, median (mean) µs per call."""
    owned = [column.timings.own() for column in columns]
    lines = ["| stage | " + " | ".join(c.title for c in columns) + " |", "|---|" + "--:|" * len(columns)]
    for name in [*columns[0].timings.names, "total"]:
        label = f"**{name}**" if name == "total" else name
        lines.append(f"| {label} | " + " | ".join(_cell(own[name], drop) for own in owned) + " |")
    cpu = [f"{c.cpu_ns / max(c.measured, 1) / 1000:7.1f}" for c in columns]
    lines.append("| CPU of this process per call | " + " | ".join(cpu) + " |")
    log = [f"{c.log_ns / max(c.measured, 1) / 1000:7.1f}" for c in columns]
    lines.append("| log row write (batched, after the calls) | " + " | ".join(log) + " |")
    return "\n".join(lines)


async def measure(calls: int, rounds: int, warmup: int, redis_url: str) -> str:
    problem = governance.redis_problem(redis_url)
    if problem:
        raise SystemExit(problem)
    prefix = f"alephant-bench-stages-{os.getpid()}:"
    try:
        with tempfile.TemporaryDirectory(prefix="alephant-stages-") as tmp:
            work = Path(tmp)
            async with (
                _columns("in-process", work, None) as memory,
                _columns("Redis", work, (redis_url, prefix)) as shared,
            ):
                columns = [*memory, *shared]
                for column in columns:
                    await column.calls(warmup, measured=False)
                gc.collect()
                gc.freeze()  # as the gateway does after start-up
                for _ in range(rounds):
                    for column in columns:
                        await column.calls(calls)
                overhead = await _wrapper_cost()
                ping = await _redis_round_trip(redis_url)
                result = table(columns, drop=warmup)
    finally:
        governance.drop_redis_keys(redis_url, prefix)
    return (
        f"{result}\n\nmedian (mean) µs per call over {calls * rounds:,} sequential calls per column; "
        f"each stage's figure includes one timer wrapper ({overhead:.2f} µs). One Redis PING round trip from "
        f"this loop (redis.asyncio): median {ping:.1f} µs."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="calls per column per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the columns alternate within each")
    parser.add_argument("--warmup", type=int, default=200, help="calls per column before measuring (not counted)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis for the Redis columns")
    args = parser.parse_args()
    for name in [name for name in os.environ if name.startswith("ALEPHANT_")]:
        del os.environ[name]  # the settings here are the script's own
    print(uvloop.run(measure(args.calls, args.rounds, args.warmup, args.redis)))


if __name__ == "__main__":
    main()
