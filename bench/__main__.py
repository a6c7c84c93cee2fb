"""The benchmark harness (issue 11): every scenario against the mock directly, the aiohttp floor, the gateway and
LiteLLM, in one run on one machine.

Scenarios: (a) bare pass-through, (b) full governance (virtual key, policy, budget reservation and rate and
concurrency limits on Redis, request log on PostgreSQL, cost) next to the same gateway without limit rules, (c)
streaming (throughput, time to first token, inter-chunk gaps), (d) Anthropic-ingress translation, (e) ``--workers
2`` scaling; plus added latency at a fixed 1,000 RPS (open loop), RSS over 1M governed requests, and a py-spy
profile of the governed path. Every governed request must be answered: a refusal (402/429) voids the numbers.

    python -m bench            # the full run (~15 min): writes bench/RESULTS.md and bench/results.png
    python -m bench --quick    # a smoke of the harness (< 60 s): tiny durations, no LiteLLM, no timed bar
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import uvloop

from bench import governance, load, report, targets
from bench.profile import record, summarize
from bench.targets import Target

CHAT = '{"model":"bench/m1","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
STREAM = CHAT[:-1] + ',"stream":true,"stream_options":{"include_usage":true}}'
PACED = STREAM.replace("bench/m1", "bench/paced-5")
MESSAGES = '{"model":"bench/m1","max_tokens":256,"messages":[{"role":"user","content":"Hello there, how are you?"}]}'
CHAT_PATH, MESSAGES_PATH = "/v1/chat/completions", "/v1/messages"


@dataclass(frozen=True)
class Plan:
    quick: bool
    duration: float  # seconds per wrk measurement
    warmup: float
    connections: int
    rate: float  # the fixed-rate test's requests per second
    rate_seconds: float
    streams: int
    soak_requests: int
    profile_seconds: int


FULL = Plan(False, 10, 3, 32, 1000, 15, 200, 1_000_000, 12)
QUICK = Plan(True, 1, 0, 16, 200, 1, 10, 2_000, 0)


@dataclass
class Row:
    scenario: str
    target: str
    rps: float = float("nan")
    p50: float = float("nan")
    p99: float = float("nan")
    added_p50: float = float("nan")
    rss_mb: float = float("nan")
    errors: int = 0
    note: str = ""


class Run:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.rows: list[Row] = []
        self.extra: dict[str, object] = {}
        self.scripts: dict[tuple[str, str], Path] = {}

    def say(self, text: str) -> None:
        print(text, flush=True)

    def script(self, target: Target, body: str) -> Path:
        key = (target.name, body)
        if key not in self.scripts:
            path = self.work / f"load-{len(self.scripts)}.lua"
            headers = {"Content-Type": "application/json", **target.headers}
            self.scripts[key] = load.wrk_script(path, body=body, headers=headers)
        return self.scripts[key]

    def throughput(
        self, scenario: str, target: Target, body: str, path: str = CHAT_PATH, connections: int | None = None
    ) -> Row:
        plan, script = self.plan, self.script(target, body)
        conns = connections or plan.connections
        if plan.warmup:
            load.wrk(target.base + path, script, duration=plan.warmup, connections=conns)
        result = load.wrk(target.base + path, script, duration=plan.duration, connections=conns)
        direct = next((r for r in self.rows if r.scenario == scenario and r.target == "mock (direct)"), None)
        row = Row(scenario, target.name, result.rps, result.p50, result.p99, rss_mb=target.rss_mb())
        row.errors = result.errors
        row.added_p50 = result.p50 - direct.p50 if direct else float("nan")
        self.rows.append(row)
        self.say(
            f"  {scenario:<28} {target.name:<26} {result.rps:>9,.0f} RPS  p50 {result.p50:7.2f} ms  "
            f"p99 {result.p99:7.2f} ms  rss {row.rss_mb:6.1f} MB  errors {result.errors}"
        )
        return row


def _machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    packages = {}
    for name in ("uvicorn", "granian", "aiohttp", "starlette", "uvloop"):
        try:
            packages[name] = __import__("importlib.metadata").metadata.version(name)
        except Exception:
            packages[name] = "absent"
    return {
        "host": platform.node(),
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{int(memory) / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "packages": ", ".join(f"{k} {v}" for k, v in packages.items()),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


@contextlib.contextmanager
def _postgres(admin_url: str) -> Iterator[str | None]:
    """A throwaway database, dropped afterwards; None when PostgreSQL is not reachable."""
    name = f"alephant_bench_{os.getpid()}"

    async def execute(sql: str) -> bool:
        try:
            connection = await asyncpg.connect(admin_url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            await connection.execute(sql)
        finally:
            await connection.close()
        return True

    if not asyncio.run(execute(f"CREATE DATABASE {name}")):
        yield None
        return
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _log_rows(database_url: str) -> int:
    from server.storage import Database, LogQuery

    async def count() -> int:
        async with Database(database_url) as database:
            return await LogQuery(database).count()

    return asyncio.run(count())


@contextlib.contextmanager
def _redis(url: str) -> Iterator[tuple[str, str]]:
    """The run's Redis (URL, key prefix of its own); the run's counters are deleted afterwards."""
    problem = governance.redis_problem(url)
    if problem:
        sys.exit(problem)
    prefix = f"alephant-bench-{os.getpid()}:"
    try:
        yield url, prefix
    finally:
        governance.drop_redis_keys(url, prefix)


def _rate(run: Run, scenario: str, target: Target, body: str) -> None:
    request = load.http_request(
        "127.0.0.1", target.port, CHAT_PATH, body.encode(), {"Content-Type": "application/json", **target.headers}
    )
    plan = run.plan
    result = uvloop.run(load.fixed_rate("127.0.0.1", target.port, request, rate=plan.rate, duration=plan.rate_seconds))
    rates: dict[str, dict[str, float]] = run.extra.setdefault("fixed_rate", {})  # type: ignore[assignment]
    rates[target.name] = {k: float(v) for k, v in asdict(result).items()}
    run.say(
        f"  {scenario:<28} {target.name:<26} {result.rate:>9,.0f} RPS sent, p50 {result.p50:6.3f} ms  "
        f"p99 {result.p99:6.3f} ms  schedule lag p99 {result.lag_p99:.3f} ms  errors {result.errors}"
    )


def _ttft(run: Run, target: Target) -> None:
    request = load.http_request(
        "127.0.0.1", target.port, CHAT_PATH, PACED.encode(), {"Content-Type": "application/json", **target.headers}
    )
    uvloop.run(load.streams("127.0.0.1", target.port, request, count=3))  # warm the connections
    result = uvloop.run(load.streams("127.0.0.1", target.port, request, count=run.plan.streams))
    ttft: dict[str, dict[str, float]] = run.extra.setdefault("ttft", {})  # type: ignore[assignment]
    ttft[target.name] = {k: float(v) for k, v in asdict(result).items()}
    run.say(
        f"  {'(c) streaming TTFT':<28} {target.name:<26} TTFT p50 {result.ttft_p50:6.3f} ms  "
        f"p99 {result.ttft_p99:6.3f} ms  gap {result.gap_mean:6.3f} ms  errors {result.errors}"
    )


def _soak(run: Run, target: Target, body: str) -> None:
    """RSS while the governed gateway serves ``soak_requests`` requests, sampled after each tenth."""
    plan, script = run.plan, run.script(target, body)
    samples = [(0, target.rss_mb())]
    served = 0
    rate = next(r.rps for r in run.rows if r.target == target.name and r.scenario.startswith("(b)"))
    while served < plan.soak_requests:
        seconds = max(1.0, min(plan.soak_requests - served, plan.soak_requests / 10) / max(rate, 1.0))
        result = load.wrk(target.base + CHAT_PATH, script, duration=seconds, connections=plan.connections)
        served += result.requests
        samples.append((served, target.rss_mb()))
    run.extra["soak"] = {"target": target.name, "samples": samples}
    run.say(f"  soak: {served:,} requests, RSS " + " → ".join(f"{mb:.0f}" for _, mb in samples) + " MB")


def _profile(run: Run, target: Target, body: str) -> None:
    plan = run.plan
    script = run.script(target, body)
    with subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{plan.connections}",
            f"-d{plan.profile_seconds + 4}s",
            "-s",
            str(script),
            target.base + CHAT_PATH,
        ],
        stdout=subprocess.DEVNULL,
    ) as loader:
        time.sleep(1.5)
        out = record(target.process.pid, run.work / "profile.txt", seconds=plan.profile_seconds)
        loader.wait()
    shares, leaves, samples = summarize(out)
    run.extra["profile"] = {"target": target.name, "samples": samples, "buckets": shares, "leaves": leaves}
    shutil.copy(out, targets.ROOT / "bench" / "out" / "profile-governed.txt")
    run.say(f"  profile: {samples} samples; " + ", ".join(f"{name} {pct:.0f}%" for name, pct in shares[:6]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke of the harness: tiny durations, no LiteLLM")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to create and drop a throwaway database",
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/0", help="the Redis the governed gateways keep their limits in"
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (and its install)")
    parser.add_argument("--soak", type=int, help="requests for the RSS soak (default 1,000,000; quick 2,000)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    plan = QUICK if args.quick else FULL
    if args.soak:
        plan = dataclasses.replace(plan, soak_requests=args.soak)
    work = Path(tempfile.mkdtemp(prefix="alephant-bench-"))
    (targets.ROOT / "bench" / "out").mkdir(exist_ok=True)
    run = Run(plan, work)
    run.extra["machine"] = _machine()
    targets.snapshot_source(work)
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            _scenarios(run, stack, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.extra["elapsed_s"] = round(time.monotonic() - started, 1)
    run.extra["machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())  # type: ignore[index]
    payload = {"plan": asdict(plan), "rows": [asdict(r) for r in run.rows], **run.extra}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2))
    print()
    print(report.tables(payload))
    if not plan.quick:
        (targets.ROOT / "bench" / "out" / "results.json").write_text(json.dumps(payload, indent=2))
        report.write_results(payload, targets.ROOT / "bench" / "RESULTS.md")
        chart = report.chart(payload, targets.ROOT / "bench" / "results.png", targets.LITELLM_VENV / "bin" / "python")
        print(chart)
    print(f"\nfinished in {run.extra['elapsed_s']} s")
    void = report.refused(payload)
    if void:
        sys.exit("the numbers are void: the gateway failed or refused requests (" + "; ".join(void) + ")")


def _scenarios(run: Run, stack: contextlib.ExitStack, args: argparse.Namespace) -> None:
    plan, work = run.plan, run.work
    mock = stack.enter_context(targets.python_server("mock (direct)", "bench.mock_upstream", work=work))
    floor = stack.enter_context(
        targets.python_server("floor (aiohttp proxy)", "bench.floor_proxy", "--upstream", mock.base, work=work)
    )
    lite: Target | None = None
    if plan.quick or args.no_litellm:
        run.extra["litellm"] = "skipped (--quick)" if plan.quick else "skipped (--no-litellm)"
    else:
        problem = targets.litellm_install(work / "litellm-install.log")
        if problem:
            run.extra["litellm"] = f"not installed: {problem}"
        else:
            lite = stack.enter_context(
                targets.litellm(f"LiteLLM {targets.litellm_version()}", work=work, upstream=mock.base)
            )
            run.extra["litellm"] = lite.name
    pg = stack.enter_context(_postgres(args.postgres))
    redis = stack.enter_context(_redis(args.redis))
    run.extra["limits_backend"] = f"Redis ({args.redis}, keys under {redis[1]!r}, deleted after the run)"
    governed_url = pg or f"sqlite:///{work / 'governed.db'}"
    run.extra["governed_store"] = "PostgreSQL (throwaway database)" if pg else "SQLite (PostgreSQL unreachable)"
    servers = ["uvicorn", "granian"] if shutil.which("granian", path=str(Path(sys.executable).parent)) else ["uvicorn"]
    if plan.quick:
        servers = ["uvicorn"]
    run.extra["servers"] = servers
    others = [t for t in (floor, lite) if t is not None]

    run.say("(a) bare pass-through")
    bare = targets.gateway_config(work, mock.base, priced=False)
    run.throughput("(a) pass-through", mock, CHAT)
    run.throughput("(a) pass-through", floor, CHAT)
    for server in servers:
        with targets.gateway(
            f"gateway ({server})", work=work, config=bare, database_url=f"sqlite:///{work}/a-{server}.db", server=server
        ) as gw:
            run.throughput("(a) pass-through", gw, CHAT)
    if lite:
        run.throughput("(a) pass-through", lite, CHAT)

    run.say("(b)-(d) governed gateway on " + run.extra["governed_store"])  # type: ignore[operator]
    priced = targets.gateway_config(work, mock.base, priced=True)
    for scenario, body, path in (("(b) governed", CHAT, CHAT_PATH), ("(c) streaming", STREAM, CHAT_PATH)):
        run.throughput(scenario, mock, body, path)
        run.throughput(scenario, floor, body, path)
    governed: dict[str, Target] = {}
    tenants: governance.Tenants | None = None
    for server in servers:
        gw = stack.enter_context(
            targets.gateway(
                f"gateway ({server})", work=work, config=priced, database_url=governed_url, server=server, redis=redis
            )
        )
        if tenants is None:
            tenants = governance.provision(gw.base, targets.GATEWAY_KEY)
            time.sleep(1.5)  # the key and limits snapshots refresh every second
        gw.headers = {"Authorization": f"Bearer {tenants.limited}"}
        unlimited = dataclasses.replace(
            gw, name=f"{gw.name}, no limits", headers={"Authorization": f"Bearer {tenants.open}"}
        )
        governed[server] = gw
        rows_before = _log_rows(governed_url)
        requests = 0
        for scenario, target, body, path in (
            ("(b) governed", gw, CHAT, CHAT_PATH),
            ("(b) governed", unlimited, CHAT, CHAT_PATH),
            ("(c) streaming", gw, STREAM, CHAT_PATH),
            ("(d) Anthropic ingress", gw, MESSAGES, MESSAGES_PATH),
        ):
            row = run.throughput(scenario, target, body, path)
            requests += int(row.rps * plan.duration)
        time.sleep(1.5)
        written = _log_rows(governed_url) - rows_before
        run.extra.setdefault("log_rows", {})[gw.name] = {"rows": written, "approx_requests": requests}  # type: ignore[index]
        window = governance.budget_window(gw.base, targets.GATEWAY_KEY, tenants.budget_id)
        run.extra.setdefault("budget_window", {})[gw.name] = window  # type: ignore[index]
        run.say(
            f"  budget window after {gw.name}: spent {window['spent_nano']:,} nano-USD, "
            f"still reserved {window['reserved_nano']:,} after {window['settled_s']} s"
        )
    if lite:
        for scenario, body, path in (
            ("(b) governed", CHAT, CHAT_PATH),
            ("(c) streaming", STREAM, CHAT_PATH),
            ("(d) Anthropic ingress", MESSAGES, MESSAGES_PATH),
        ):
            run.throughput(scenario, lite, body, path)

    run.say(f"fixed rate {plan.rate:,.0f} RPS, open loop")
    main_gw = governed["uvicorn"]
    for target in (mock, floor, *governed.values()):
        _rate(run, "fixed rate", target, CHAT)
    run.say("(c) streaming time to first token (paced upstream, 5 ms between events)")
    for target in (mock, *others, *governed.values()):
        _ttft(run, target)

    run.say("(e) workers")
    run.throughput("(e) workers", main_gw, CHAT, connections=64)
    run.rows[-1].target = "gateway (uvicorn) 1 worker"
    with targets.gateway(
        "gateway (uvicorn) 2 workers", work=work, config=priced, database_url=governed_url, workers=2, redis=redis
    ) as gw2:
        gw2.headers = main_gw.headers
        time.sleep(1.0)
        run.throughput("(e) workers", gw2, CHAT, connections=64)

    if plan.profile_seconds:
        run.say("profile (py-spy) of the governed path")
        _profile(run, main_gw, CHAT)
    run.say(f"soak: {plan.soak_requests:,} governed requests")
    _soak(run, main_gw, CHAT)


if __name__ == "__main__":
    main()
