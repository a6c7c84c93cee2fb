"""What a gateway process loads before it is asked for anything: start-up time and resident memory are features.

The payment SDKs (web3, eth-account, x402, pympp), the OpenTelemetry exporter and Alembic cost a process
~1 s of start-up and ~30 MB together. A gateway that sells and buys nothing, exports no spans and finds its
database already migrated must not load them; the features that need them import them on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAZY = (
    "web3",
    "eth_account",
    "eth_utils",
    "x402",
    "mpp",
    "alembic",
    "mako",
    "opentelemetry.exporter",
    "opentelemetry.sdk.trace",
)


def _loaded_after(code: str, tmp_path: Path) -> set[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {"ALEPHANT_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "ALEPHANT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**env, "PATH": ""}
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


_LIFESPAN = """
import asyncio, server.app
app = server.app.create_app_from_env()
async def main():
    async with app.router.lifespan_context(app):
        pass
asyncio.run(main())
"""


def _optional(loaded: set[str]) -> list[str]:
    return sorted(name for name in loaded if any(name == lazy or name.startswith(lazy + ".") for lazy in LAZY))


def test_a_plain_gateway_loads_none_of_the_optional_stacks(tmp_path: Path) -> None:
    assert not _optional(_loaded_after("import server.app; server.app.create_app_from_env()", tmp_path))
    _loaded_after(_LIFESPAN, tmp_path)  # the first start migrates the new database: Alembic loads then
    restarted = _loaded_after(_LIFESPAN, tmp_path)
    assert {"server.app", "server.storage.logs"} <= restarted
    assert not _optional(restarted), "a restart on a migrated database"


def test_paying_loads_the_payment_sdks_on_first_use(tmp_path: Path) -> None:
    loaded = _loaded_after("from finance.payments import find_asset; find_asset('eip155:84532')", tmp_path)
    assert {"x402", "eth_utils"} <= loaded


def test_the_cli_help_loads_no_storage_or_services(tmp_path: Path) -> None:
    """``alephant --help`` and each group's help load typer and the command modules, not the gateway."""
    code = (
        "import sys\nfrom typer.main import get_command\nfrom server.cli import app\n"
        "get_command(app)  # every group and command registered, their options built"
    )
    loaded = _loaded_after(code, tmp_path)
    heavy = ("sqlalchemy", "redis", "aiohttp", "starlette", "mcp", "server.storage", "server.app", *LAZY)
    assert not sorted(name for name in loaded if any(name == h or name.startswith(h + ".") for h in heavy))


def test_the_cli_copy_of_the_run_statuses_is_the_stores() -> None:
    from server.commands_runs import RUN_STATUSES as shown
    from server.storage.runs import RUN_STATUSES

    assert shown == RUN_STATUSES
