"""Sample the gateway under load with py-spy and say where its CPU time goes.

py-spy's raw (collapsed) output is one line per distinct stack, ``frame;frame;...;leaf count``. Only samples of the
thread holding the GIL are kept (``--gil``): the shares below are of the time Python ran, which is what bounds one
worker. Without it the log driver's thread showed up to a fifth of the samples while it waited on its queue
(py-spy took the lock wait for work); its real CPU was ~5 µs a request.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["BUCKETS", "record", "summarize"]

# First match wins, checked from the leaf up: the innermost frame that belongs to one of these owns the sample.
BUCKETS: tuple[tuple[str, str], ...] = (
    ("request log (queue, batch COPY)", r"server/storage/"),
    ("cost (finance/)", r"finance/"),
    ("pipeline stages (server/stages, call, pipeline)", r"server/(stages/|call\.py|pipeline\.py|keyring\.py)"),
    ("responses + routes (server/)", r"server/"),
    ("provider adapter + ingress (providers/)", r"providers/(?!http1/)"),
    ("upstream client (providers/http1)", r"providers/http1/|aiohttp/|multidict|yarl"),
    ("Starlette (routing, middleware, Request)", r"starlette/"),
    ("ASGI server (uvicorn/httptools)", r"uvicorn/|httptools"),
    ("ASGI server (granian)", r"granian"),
    ("database driver (asyncpg/SQLAlchemy)", r"asyncpg|sqlalchemy"),
    ("JSON (orjson)", r"orjson"),
    ("pydantic", r"pydantic"),
    ("event loop (asyncio/uvloop)", r"asyncio/|uvloop"),
)


def record(pid: int, out: Path, *, seconds: int, rate: int = 250) -> Path:
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate)]
    command += ["--format", "raw", "--output", str(out), "--nonblocking", "--gil"]
    subprocess.run(command, check=True, capture_output=True)
    return out


def _frames(stack: str) -> list[str]:
    return [frame for frame in stack.split(";") if frame]


def summarize(path: Path, *, top: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]], int]:
    """(share per bucket, top leaf functions by self time, samples)."""
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        leaf = re.sub(r"\s*\(/[^)]*?([^/]+/[^/]+):(\d+)\)", r" (\1:\2)", frames[-1]) if frames else "?"
        leaves[leaf] += count
        owner = "other (interpreter, stdlib)"
        for frame in reversed(frames):
            hit = next((name for name, pattern in BUCKETS if re.search(pattern, frame)), None)
            if hit is not None:
                owner = hit
                break
        buckets[owner] += count
    share = [(name, 100 * n / total) for name, n in buckets.most_common()] if total else []
    tops = [(name, 100 * n / total) for name, n in leaves.most_common(top)] if total else []
    return share, tops, total
