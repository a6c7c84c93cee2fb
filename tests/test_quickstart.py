"""The README's promise: `alephant serve` on embedded defaults prints a curl that works, and the call is logged.

The server runs in an empty directory with no ALEPHANT_* settings at all, exactly as `make run` starts it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port


def test_printed_curl_returns_a_mock_completion_and_a_log_row(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_")}
    env["PYTHONPATH"] = str(ROOT)
    env["ALEPHANT_PORT"] = str(port)  # the only departure from defaults: 8787 may be taken on this machine
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        key_file = tmp_path / ".alephant" / "master.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (tmp_path / ".alephant" / "alephant.db").is_file(), "embedded SQLite under ./.alephant/"

        server.terminate()
        banner, _ = server.communicate(timeout=15)
        assert key_file.read_text().strip() not in banner, "the banner says where the key is, never the key"
        assert str(key_file) in banner
        curl = re.search(r"^\s*(curl .*?)\n\n", banner, re.S | re.M)
        assert curl, banner
        assert "import os" in banner and "from openai import OpenAI" in banner

        server = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        result = subprocess.run(["bash", "-c", curl.group(1)], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        completion = json.loads(result.stdout)
        assert completion["choices"][0]["message"]["content"] == "Mock reply to: Hello!"

        deadline = time.monotonic() + 10
        while True:
            tail = subprocess.run(
                [sys.executable, "-m", "server", "logs", "tail", "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            rows = [json.loads(line) for line in tail.stdout.splitlines()]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(rows) == 1
        assert rows[0]["model"] == "mock/mock-1" and rows[0]["status"] == "ok" and rows[0]["cost_nano"] > 0
    finally:
        server.terminate()
        server.wait(timeout=15)
