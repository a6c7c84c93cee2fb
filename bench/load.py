"""Load generators: wrk for closed-loop throughput, a raw-socket asyncio client for the rest.

- ``wrk`` (Debian's 4.2): fixed duration, 2 threads, N keep-alive connections; RPS and latency percentiles.
- ``fixed_rate``: open loop. Requests leave on a schedule (``rate`` per second) whatever the answers do, each on
  an idle keep-alive connection (a new one is opened when none is idle, so a slow target cannot slow the
  schedule). Latency is timed from the request's write to the last byte of its answer. The schedule lag (how
  late each request left) is reported too, so a run against the mock shows the generator holds the rate.
- ``streams``: one stream at a time; time to the first ``data:`` bytes and the gaps between later events.

The client is a bare ``asyncio.Protocol`` (HTTP/1.1, Content-Length or chunked answers), so its own cost per
request is a few microseconds and identical for every target.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RateResult", "StreamResult", "WrkResult", "fixed_rate", "http_request", "percentile", "streams", "wrk"]


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50: float  # ms
    p99: float
    requests: int
    errors: int


def wrk_script(path: Path, *, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{body}'"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, script: Path, *, duration: float, connections: int, threads: int = 2) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    out = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else 0.0

    errors = number(r"Non-2xx or 3xx responses: (\d+)") + sum(
        float(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
    )
    return WrkResult(
        rps=number(r"Requests/sec:\s+([\d.]+)"),
        p50=ms("50%"),
        p99=ms("99%"),
        requests=int(number(r"(\d+) requests in")),
        errors=int(errors),
    )


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


class _Client(asyncio.Protocol):
    """One keep-alive connection, one request in flight; calls back with (status, event times) when done."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._done: Callable[[_Client, int, list[float]], None] | None = None
        self._events: list[float] = []
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, done: Callable[[_Client, int, list[float]], None]) -> float:
        self._done, self._events = done, []
        self._buffer.clear()
        started = time.perf_counter()
        assert self.transport is not None
        self.transport.write(request)
        return started

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if b"data:" in data:
            self._events.append(now)
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"content-length:")
        if at >= 0:
            length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            complete = len(buffer) >= end + 4 + length
        else:
            complete = buffer.endswith(b"0\r\n\r\n")
        if complete and self._done is not None:
            done, self._done = self._done, None
            self._events.append(now)
            done(self, int(head[9:12]), self._events)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _connect(host: str, port: int) -> _Client:
    _, client = await asyncio.get_running_loop().create_connection(_Client, host, port)
    return client


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


@dataclass(frozen=True)
class RateResult:
    rate: float  # achieved requests/s (sent)
    p50: float  # ms
    p99: float
    lag_p99: float  # ms the generator sent late, 99th percentile
    completed: int
    errors: int


async def fixed_rate(
    host: str, port: int, request: bytes, *, rate: float, duration: float, warm_connections: int = 16
) -> RateResult:
    idle = [await _connect(host, port) for _ in range(warm_connections)]
    clients = list(idle)
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    sent_at: dict[int, float] = {}
    finished = asyncio.Event()
    total = int(rate * duration)
    completed = 0

    def done(client: _Client, status: int, events: list[float]) -> None:
        nonlocal errors, completed
        latencies.append((events[-1] - sent_at.pop(id(client))) * 1000)
        errors += status >= 400
        completed += 1
        idle.append(client)
        if completed >= total:
            finished.set()

    start = time.perf_counter() + 0.01
    for i in range(total):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0.0005:
            await asyncio.sleep(wait)
        while idle and (idle[-1].transport is None or idle[-1].transport.is_closing()):
            idle.pop()  # the server closed it (keep-alive timeout); its request already completed
        client = idle.pop() if idle else await _connect(host, port)
        if client not in clients:
            clients.append(client)
        sent_at[id(client)] = client.send(request, done)
        lags.append(max(0.0, (sent_at[id(client)] - due) * 1000))
    elapsed = time.perf_counter() - start
    try:
        await asyncio.wait_for(finished.wait(), timeout=10)
    except TimeoutError:
        errors += total - completed
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return RateResult(
        rate=total / elapsed,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        lag_p99=percentile(lags, 99),
        completed=completed,
        errors=errors,
    )


@dataclass(frozen=True)
class StreamResult:
    ttft_p50: float  # ms, request write to the first data: bytes
    ttft_p99: float
    gap_mean: float  # ms between consecutive data: reads after the first
    total_p50: float  # ms, request write to the end of the stream
    streams: int
    errors: int


async def streams(host: str, port: int, request: bytes, *, count: int) -> StreamResult:
    client = await _connect(host, port)
    ttft: list[float] = []
    totals: list[float] = []
    gaps: list[float] = []
    errors = 0
    for _ in range(count):
        answered: asyncio.Future[tuple[int, list[float]]] = asyncio.get_running_loop().create_future()
        started = client.send(request, lambda _c, status, events, f=answered: f.set_result((status, events)))
        status, events = await asyncio.wait_for(answered, timeout=30)
        if status >= 400 or len(events) < 2:
            errors += 1
            continue
        ttft.append((events[0] - started) * 1000)
        totals.append((events[-1] - started) * 1000)
        data = events[:-1]
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(data)]
    assert client.transport is not None
    client.transport.close()
    return StreamResult(
        ttft_p50=percentile(ttft, 50),
        ttft_p99=percentile(ttft, 99),
        gap_mean=sum(gaps) / len(gaps) if gaps else float("nan"),
        total_p50=percentile(totals, 50),
        streams=len(ttft),
        errors=errors,
    )
