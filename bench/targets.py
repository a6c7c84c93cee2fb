"""The processes under test: the mock upstream, the aiohttp floor, the gateway (uvicorn or granian), LiteLLM.

Each is started on a free 127.0.0.1 port, waited on until it answers, and stopped by its own process group.
``rss_mb`` sums VmRSS over the process and its children (uvicorn's and granian's workers are children).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = [
    "BENCH_MODELS",
    "GATEWAY_KEY",
    "LITELLM_KEY",
    "LITELLM_VENV",
    "ROOT",
    "Target",
    "free_port",
    "gateway",
    "litellm",
    "litellm_install",
    "python_server",
    "rss_mb",
    "snapshot_source",
]

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
GATEWAY_KEY = "alk_master_bench_0123456789abcdefghijkl"
LITELLM_KEY = "sk-bench-0123456789"
BENCH_MODELS = ("m1", "paced-5")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Target:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    command: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def rss_mb(pid: int) -> float:
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        pending += _children(current)
    return total / 1024


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"did not listen on {port} within {timeout:g}s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _running(
    name: str, command: list[str], *, port: int, env: dict[str, str], cwd: Path, timeout: float = 30
) -> Iterator[Target]:
    log = cwd / f"{name.replace(' ', '_').replace('/', '_')}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=sink, stderr=sink, start_new_session=True)
    try:
        _wait_port(port, process, timeout, log)
        yield Target(name=name, port=port, process=process, command=" ".join(command))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# The gateway runs from a copy of the tree taken when the run starts, so edits made in the working tree while a
# run is in progress (other people work in it) cannot change or break the code under test half-way.
SOURCE_PACKAGES = ("server", "providers", "finance", "tools", "clients", "bench")
_source = {"path": ROOT}


def snapshot_source(work: Path) -> Path:
    target = work / "src"
    for package in SOURCE_PACKAGES:
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__", ".venv*"))
    _source["path"] = target
    return target


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEPHANT_", "GRANIAN_"))}
    env["PYTHONPATH"] = str(_source["path"])
    env.update(extra)
    return env


@contextlib.contextmanager
def python_server(name: str, module: str, *args: str, work: Path) -> Iterator[Target]:
    """``python -m bench.mock_upstream`` or ``bench.floor_proxy`` on a free port."""
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), *args]
    with _running(name, command, port=port, env=_env(), cwd=work) as target:
        yield target


def gateway_config(work: Path, upstream: str, *, priced: bool) -> Path:
    provider: dict[str, object] = {"base_url": f"{upstream}/v1", "models": list(BENCH_MODELS)}
    if priced:
        provider["prices"] = {m: {"input_mtok": "0.15", "output_mtok": "0.60"} for m in BENCH_MODELS}
    path = work / f"alephant-{'priced' if priced else 'bare'}.yaml"
    path.write_text(yaml.safe_dump({"providers": {"bench": provider}}))
    return path


@contextlib.contextmanager
def gateway(
    name: str,
    *,
    work: Path,
    config: Path,
    database_url: str,
    server: str = "uvicorn",
    workers: int = 1,
    redis: tuple[str, str] | None = None,
) -> Iterator[Target]:
    """A gateway on ``database_url``; ``redis`` (URL, key prefix) puts its limits on Redis under that prefix."""
    port = free_port()
    data_dir = work / f"data-{port}"
    env = _env(
        ALEPHANT_CONFIG=str(config),
        ALEPHANT_DATABASE_URL=database_url,
        ALEPHANT_MASTER_KEY=GATEWAY_KEY,
        ALEPHANT_DATA_DIR=str(data_dir),
        ALEPHANT_PORT=str(port),
    )
    if redis is not None:
        env.update(ALEPHANT_REDIS_URL=redis[0], ALEPHANT_LIMITS__REDIS_PREFIX=redis[1])
    bin_dir = Path(sys.executable).parent
    if server == "granian":
        command = [str(bin_dir / "granian"), "--interface", "asgi", "--factory", "--loop", "uvloop"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-ws"]
        command += ["--log-level", "warning", "server.app:create_app_from_env"]
    else:
        command = [sys.executable, "-m", "server", "serve", "--quiet", "--workers", str(workers)]
    with _running(name, command, port=port, env=env, cwd=work) as target:
        target.headers = {"Authorization": f"Bearer {GATEWAY_KEY}"}
        yield target


def litellm_install(log: Path) -> str | None:
    """Create ``bench/.venv-litellm`` with ``litellm[proxy]`` (and matplotlib for the chart); None when it works."""
    python = LITELLM_VENV / "bin" / "python"
    if (LITELLM_VENV / "bin" / "litellm").exists():
        return None
    steps = [
        ["python3.11", "-m", "venv", str(LITELLM_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", "litellm[proxy]", "matplotlib"],
    ]
    with log.open("ab") as sink:
        for step in steps:
            if subprocess.run(step, stdout=sink, stderr=sink, check=False).returncode != 0:
                return f"`{' '.join(step)}` failed (see {log.name})"
    return None


def litellm_version() -> str:
    out = subprocess.run(
        [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "show", "litellm"], capture_output=True, text=True
    ).stdout
    return next((line.split()[1] for line in out.splitlines() if line.startswith("Version:")), "?")


@contextlib.contextmanager
def litellm(name: str, *, work: Path, upstream: str) -> Iterator[Target]:
    port = free_port()
    config = work / "litellm.yaml"
    models = [
        {
            "model_name": f"bench/{model}",
            "litellm_params": {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": "sk-none"},
        }
        for model in BENCH_MODELS
    ]
    config.write_text(yaml.safe_dump({"model_list": models, "general_settings": {"master_key": LITELLM_KEY}}))
    env = _env(LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="true")
    env.pop("DATABASE_URL", None)
    env.pop("PYTHONPATH", None)
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    with _running(name, command, port=port, env=env, cwd=work, timeout=120) as target:
        target.headers = {"Authorization": f"Bearer {LITELLM_KEY}"}
        yield target
