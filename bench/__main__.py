"""Load the gateway with wrk against the built-in mock provider and report throughput and latency.

This is the foundation's harness: a real ``alephant serve`` (one worker, uvicorn) on a free port, on the
embedded SQLite store or PostgreSQL, loaded by wrk on the same machine. It checks afterwards that every request
left exactly one log row, so a fast number cannot come from dropping the log. The LiteLLM comparison, the bare
proxy floor and the other scenarios of issue 11 build on this.

    python -m bench [--duration 10] [--connections 32] [--postgres postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from server.storage import Database, LogQuery

MASTER_KEY = "alk_master_bench_0123456789abcdefghijkl"
CHAT = '{"model":"mock/mock-1","messages":[{"role":"user","content":"Hello there, how are you today?"}]}'
STREAM = CHAT[:-1] + ',"stream":true}'
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _lua(body: str) -> str:
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {MASTER_KEY}"\n'
    )


def _wrk(url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": ms("50%"),
        "p99": ms("99%"),
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
    }


async def _rows(url: str) -> int:
    async with Database(url) as database:
        return await LogQuery(database).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose database may be used (tables are created)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="alephant-bench-"))
    database_url = args.postgres or f"sqlite:///{tmp / 'bench.db'}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_")}
    env.update(
        PYTHONPATH=str(ROOT),
        ALEPHANT_DATABASE_URL=database_url,
        ALEPHANT_MASTER_KEY=MASTER_KEY,
        ALEPHANT_DATA_DIR=str(tmp / "data"),
        ALEPHANT_PORT=str(port),
    )
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--quiet"], env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the gateway did not start")
            time.sleep(0.1)
        before = asyncio.run(_rows(database_url))
        store = "postgresql" if args.postgres else "sqlite"
        print(f"# {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · store {store}")
        print(f"# wrk -t2 -c{args.connections} -d{args.duration}s, gateway 1 worker (uvicorn+uvloop), mock provider")
        print("| scenario | RPS | p50 ms | p99 ms | non-2xx |")
        print("|---|---|---|---|---|")
        total = 0
        for name, body in (("chat, non-streamed", CHAT), ("chat, streamed (SSE)", STREAM)):
            script = tmp / "load.lua"
            script.write_text(_lua(body))
            warmup = _wrk(base + "/v1/chat/completions", script, 2, args.connections)
            result = _wrk(base + "/v1/chat/completions", script, args.duration, args.connections)
            total += int(warmup["requests"] + result["requests"])
            cells = f"{result['rps']:,.0f} | {result['p50']:.2f} | {result['p99']:.2f} | {result['errors']:.0f}"
            print(f"| {name} | {cells} |")
        time.sleep(1.5)  # the batch writer's last flush
        rows = asyncio.run(_rows(database_url)) - before
        # wrk does not count requests still in flight when it stops; the gateway logs them, so rows >= total.
        verdict = "ok" if rows >= total else "ROWS MISSING"
        print(f"\nrequests completed by wrk: {total:,}; log rows written: {rows:,} ({verdict})")
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
