"""Configuration: the file, the environment, and readable errors from `alephant config check` and `serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, load_settings
from tests.conftest import ROOT


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALEPHANT_") and not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_defaults_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ALEPHANT_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8787)
    assert settings.resolved_database_url == "sqlite:///.alephant/alephant.db"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alephant.yaml"
    path.write_text("port: 9001\nlog:\n  batch_size: 10\n")
    monkeypatch.setenv("ALEPHANT_PORT", "9002")
    settings = load_settings(path)
    assert (settings.port, settings.log.batch_size) == (9002, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port: seventy\n", "port: got 'seventy'"),
        ("prot: 80\n", "prot: unknown setting"),
        (
            "providers:\n  local:\n    base_url: localhost:8000\n",
            "providers.local.base_url: got 'localhost:8000'",
        ),
        ("aliases:\n  fast: mock-1\n", "must point at provider/model"),
        ("upstream:\n  timeout: -1\n", "upstream.timeout: got -1"),
        ("port: [8787\n", "line 2, column 1: invalid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_file_names_file_key_value_and_expectation(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "alephant.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_config_check_cli(tmp_path: Path) -> None:
    (tmp_path / "alephant.yaml").write_text("port: 80808\n")
    bad = run_cli("config", "check", cwd=tmp_path)
    assert bad.returncode == 2
    assert "alephant.yaml: port: got 80808" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "alephant.yaml").write_text("port: 8080\naliases:\n  fast: nowhere/model\n")
    unknown = run_cli("config", "check", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown provider" in unknown.stderr
    (tmp_path / "alephant.yaml").write_text("port: 8080\naliases:\n  fast: mock/mock-1\n")
    good = run_cli("config", "check", cwd=tmp_path)
    assert good.returncode == 0 and "configuration OK" in good.stdout


def test_serve_refuses_a_bad_file_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "alephant.yaml").write_text("database_url: mysql://x\n")
    result = run_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert "database_url" in result.stderr and "postgresql://" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_missing_config_file(tmp_path: Path) -> None:
    assert run_cli("version", cwd=tmp_path).stdout.startswith("alephant ")
    missing = run_cli("config", "check", "--config", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 1 and "nope.yaml: no such file" in missing.stderr


def test_models_command_lists_priced_models(tmp_path: Path) -> None:
    import json

    result = run_cli("models", "--all", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["mock/mock-1"]["input_usd_per_mtok"] == "1.000000000"
    assert rows["mock/mock-1"]["output_usd_per_mtok"] == "2.000000000"
    assert rows["openai/gpt-4o-mini"]["input_usd_per_mtok"] == "0.150000000"
    assert rows["openai/gpt-4o-mini"]["available"] is False
    usable = run_cli("models", "--json", cwd=tmp_path)
    providers = {json.loads(line)["model"].split("/")[0] for line in usable.stdout.splitlines()}
    assert providers == {"mock"}, "only providers with a key, or key-less ones the configuration lists"
