"""The ``alephant`` command: serve the gateway, manage keys, read logs, check configuration.

Every command reads the same settings as the server (``alephant.yaml`` and ``ALEPHANT_*``), so ``keys`` and
``logs`` act on the store the server uses. Problems are printed as one readable line each, never a traceback.
Commands import the store and the services when they run, so ``--help`` and start-up stay fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .commands_finance import finance_app
from .commands_governance import (
    agents_app,
    departments_app,
    master_key_app,
    policy_options,
    provider_keys_app,
    workspaces_app,
)
from .commands_limits import budgets_app, limits_app
from .commands_payments import paid_endpoints_app, wallets_app
from .commands_runs import logs_prune, logs_search, runs_app

if TYPE_CHECKING:
    from .config import Settings
    from .storage import Database, KeyRecord, LogRow

__all__ = ["app", "main"]

app = typer.Typer(
    help="Alephant: one governed gateway for agents to models, tools and paid endpoints.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list and revoke virtual keys.", no_args_is_help=True)
logs_app = typer.Typer(help="Read the request log.", no_args_is_help=True)
config_app = typer.Typer(help="Validate configuration.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(logs_app, name="logs")
app.add_typer(config_app, name="config")
app.add_typer(runs_app, name="runs")
logs_app.command("search")(logs_search)
logs_app.command("prune")(logs_prune)
app.add_typer(budgets_app, name="budgets")
app.add_typer(limits_app, name="limits")
app.add_typer(finance_app, name="finance")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(departments_app, name="departments")
app.add_typer(agents_app, name="agents")
app.add_typer(provider_keys_app, name="provider-keys")
app.add_typer(master_key_app, name="master-key")
app.add_typer(paid_endpoints_app, name="paid-endpoints")
app.add_typer(wallets_app, name="wallets")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to alephant.yaml (default: ./alephant.yaml if present)."),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    from .config import ConfigError, load_settings

    if config is not None and not config.is_file():
        raise _fail(f"{config}: no such file")
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {exc.source}: {problem}", highlight=False)
        raise typer.Exit(2) from None


def _with_store(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    import asyncio

    from .storage import Database

    async def run() -> T:
        database = Database(settings.resolved_database_url)
        await database.open()
        try:
            await database.migrate()
            return await work(database)
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (OSError, ConnectionError) as exc:
        raise _fail(f"cannot reach the store ({_redacted(settings.resolved_database_url)}): {exc}") from None


def _redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def check_settings(settings: Settings) -> list[str]:
    """Problems that need the catalog to find (the file itself already validated)."""
    from .app import build_catalog

    catalog = build_catalog(settings)
    problems = []
    for alias, target in settings.aliases.items():
        if catalog.provider(target.partition("/")[0]) is None:
            problems.append(f"aliases.{alias}: target {target!r} names an unknown provider")
    return problems


# --- serve -------------------------------------------------------------------------------------------------


def _banner(settings: Settings, host: str, port: int) -> None:
    from .master_key import master_key_path

    base = f"http://{host}:{port}"
    if settings.master_key is not None:
        key_hint = "the value of ALEPHANT_MASTER_KEY"
        key_expr = "$ALEPHANT_MASTER_KEY"
        key_py = 'os.environ["ALEPHANT_MASTER_KEY"]'
    else:
        path = master_key_path(settings).resolve()
        key_hint = f"the file {path}"
        key_expr = f"$(cat {path})"
        key_py = f'open("{path}").read().strip()'
    store = _redacted(settings.resolved_database_url)
    out.print(f"[bold]Alephant gateway {__version__}[/] listening on [cyan]{base}[/] (store: {store})")
    out.print(f"Admin (master) key: {key_hint}. Create narrower keys with `alephant keys create --name NAME`.")
    out.print("\nTry it (offline, built-in mock provider):\n", highlight=False)
    out.print(
        f"  curl -s {base}/v1/chat/completions \\\n"
        f"    -H \"Authorization: Bearer {key_expr}\" -H 'Content-Type: application/json' \\\n"
        '    -d \'{"model": "mock/mock-1", "messages": [{"role": "user", "content": "Hello!"}]}\'\n',
        highlight=False,
        markup=False,
    )
    out.print(
        "  python - <<'PY'\n"
        "  import os\n"
        "  from openai import OpenAI\n"
        f'  client = OpenAI(base_url="{base}/v1", api_key={key_py})\n'
        '  reply = client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "Hi"}])\n'
        "  print(reply.choices[0].message.content)\n"
        "  PY\n",
        highlight=False,
        markup=False,
    )
    out.print("Then: `alephant logs tail` shows the request log.\n", highlight=False)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8787).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 1).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the banner.")] = False,
) -> None:
    """Serve the gateway (OpenAI-compatible API at /v1 and /ai)."""
    import os

    import uvicorn

    from .app import create_app
    from .master_key import resolve_master_key
    from .metrics import prepare_multiprocess_dir

    settings = _settings(config, host=host, port=port, workers=workers)
    problems = check_settings(settings)
    if problems:
        for problem in problems:
            err.print(f"[bold red]error:[/] {problem}", highlight=False)
        raise typer.Exit(2)
    if settings.workers > 1 and settings.redis_url is None:
        # In-process limit counters would be per worker: every limit and budget multiplied by the worker count.
        raise _fail(
            f"--workers {settings.workers} needs shared limit counters: set ALEPHANT_REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0), or serve with one worker",
            code=2,
        )
    resolve_master_key(settings)  # create the key file before printing where it is
    if not quiet:
        _banner(settings, settings.host, settings.port)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        # Nothing in the gateway reads the client's address or scheme, so uvicorn's X-Forwarded-* middleware
        # would only add a coroutine frame that every request and every stream chunk resumes through.
        "proxy_headers": False,
        "server_header": False,  # do not announce the server software on every answer
    }
    if settings.workers > 1:
        # Workers re-read settings from the environment; carry the CLI's choices there.
        if config is not None:
            os.environ["ALEPHANT_CONFIG"] = str(config)
        os.environ["ALEPHANT_HOST"], os.environ["ALEPHANT_PORT"] = settings.host, str(settings.port)
        prepare_multiprocess_dir(settings.data_dir / "metrics")  # workers add up their metrics through it
        uvicorn.run("server.app:create_app_from_env", factory=True, workers=settings.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"alephant {__version__}")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate alephant.yaml and the ALEPHANT_* environment without serving."""
    settings = _settings(config)
    problems = check_settings(settings)
    if problems:
        for problem in problems:
            err.print(f"[bold red]error:[/] {problem}", highlight=False)
        raise typer.Exit(2)
    out.print(f"configuration OK (store: {_redacted(settings.resolved_database_url)}, port {settings.port})")


@app.command()
def models(
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    all_models: Annotated[
        bool, typer.Option("--all", help="Include providers without a key (not usable until you set one).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """List models (provider/model) with their prices per 1M tokens."""
    from finance.money import format_usd
    from finance.pricing import PriceBook
    from providers.types import Usage

    from .app import build_catalog

    settings = _settings(config)
    catalog = build_catalog(settings)
    book = PriceBook(catalog.prices)
    table = Table("model", "kind", "context", "input $/1M", "output $/1M", "key")
    shown = 0
    for spec in catalog.providers:
        if (provider and spec.id != provider) or not (all_models or spec.available):
            continue
        for name in (*spec.models, *spec.embedding_models):
            info = catalog.model_info(spec.id, name)
            # Priced at 10k tokens and scaled: a 1M-token call would hit long-context tiers.
            prompt = book.cost(spec.id, name, Usage(prompt_tokens=10_000))
            completion = book.cost(spec.id, name, Usage(completion_tokens=10_000))
            prompt, completion = (dataclasses.replace(c, nano=c.nano * 100) for c in (prompt, completion))
            priced = prompt.source is not None
            row: dict[str, Any] = {
                "model": f"{spec.id}/{name}",
                "kind": info.endpoint if info else "chat",
                "context": info.context_window if info else None,
                "input_usd_per_mtok": format_usd(prompt.nano) if priced else None,
                "output_usd_per_mtok": format_usd(completion.nano) if priced else None,
                "available": spec.available,
            }
            shown += 1
            if as_json:
                print(json.dumps(row))
                continue
            table.add_row(
                row["model"],
                str(row["kind"]),
                f"{row['context']:,}" if row["context"] else "",
                str(row["input_usd_per_mtok"] or "unpriced"),
                str(row["output_usd_per_mtok"] or ""),
                "yes" if spec.available else f"set {spec.api_key_env}",
            )
    if not as_json:
        out.print(table)
        out.print(f"{shown} models" + ("" if all_models else " (usable now; --all lists every catalog model)"))


# --- keys --------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w``, or an ISO date/datetime (UTC when no zone is given)."""
    now = now or datetime.now(tz=UTC)
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a duration (30d, 12h, 90m, 2w) or an ISO date (2027-01-31 or 2027-01-31T12:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _key_json(record: KeyRecord) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data.pop("key_hash")
    for field in ("created_at", "expires_at", "revoked_at"):
        data[field] = data[field].isoformat() if data[field] else None
    data["models"] = list(record.models)
    return data


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the key.")],
    workspace: Annotated[str, typer.Option(help="Workspace the key belongs to.")] = "default",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated allowed models, globs allowed: 'openai/*,mock/*'.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="30d, 12h, 2w, or an ISO date.")] = None,
    department: Annotated[str | None, typer.Option(help="Department id of the key.")] = None,
    agent: Annotated[str | None, typer.Option(help="Bind the key to this registered agent.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="A scope, repeatable: 'admin' opens /admin/*.")] = None,
    deny_models: Annotated[str | None, typer.Option(help="Comma-separated denied model globs (deny wins).")] = None,
    providers: Annotated[str | None, typer.Option(help="Comma-separated allowed providers.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Largest max_tokens a request may ask for.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (includes the secret).")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a virtual key. The secret is printed once; only its hash is stored."""
    from .storage import KeyStore

    settings = _settings(config)
    allowed = tuple(m.strip() for m in (models or "").split(",") if m.strip())
    expires_at = parse_expiry(expires) if expires else None
    if expires_at is not None and expires_at <= datetime.now(tz=UTC):
        raise _fail(f"--expires {expires!r} is in the past")
    if not name.strip():
        raise _fail("--name must not be empty")
    policy = policy_options(None, deny_models, providers, max_tokens, with_allow=False)
    try:
        record, secret = _with_store(
            settings,
            lambda db: KeyStore(db).create(
                name=name,
                workspace_id=workspace,
                models=allowed,
                expires_at=expires_at,
                department_id=department,
                agent_id=agent,
                scopes=tuple(scope or ()),
                policy=policy,
            ),
        )
    except LookupError as exc:  # an unknown department or agent
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps({**_key_json(record), "secret": secret}))
        return
    out.print(f"Created key [bold]{record.id}[/] ({record.name}, workspace {record.workspace_id}).")
    out.print("Secret (shown once, store it now):", highlight=False)
    print(secret)


@keys_app.command("list")
def keys_list(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never their secrets)."""
    from .storage import KeyStore

    settings = _settings(config)
    records = _with_store(settings, lambda db: KeyStore(db).list(workspace_id=workspace, include_revoked=all_keys))
    if as_json:
        print(json.dumps([_key_json(r) for r in records]))
        return
    table = Table("id", "name", "workspace", "prefix", "models", "created", "expires", "revoked")
    for r in records:
        table.add_row(
            r.id,
            r.name,
            r.workspace_id,
            r.prefix + "…",
            ",".join(r.models) or "*",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.expires_at.strftime("%Y-%m-%d %H:%M") if r.expires_at else "",
            r.revoked_at.strftime("%Y-%m-%d %H:%M") if r.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or its visible prefix.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key; servers stop accepting it within the key refresh interval (1 s by default)."""
    from .storage import KeyStore

    settings = _settings(config)
    try:
        record = _with_store(settings, lambda db: KeyStore(db).revoke(key))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if record is None:
        raise _fail(f"no active key with id or prefix {key!r} (see `alephant keys list`)")
    out.print(f"Revoked key {record.id} ({record.name}).")


# --- logs --------------------------------------------------------------------------------------------------


def _row_json(row: LogRow) -> dict[str, Any]:
    data = dataclasses.asdict(row)
    data["created_at"] = row.created_at.isoformat()
    return data


@logs_app.command("tail")
def logs_tail(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many rows.")] = 20,
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the newest request-log rows."""
    from finance.money import format_usd

    from .storage import LogQuery

    settings = _settings(config)
    rows = _with_store(settings, lambda db: LogQuery(db).tail(limit=limit, workspace_id=workspace))
    if as_json:
        for row in rows:
            print(json.dumps(_row_json(row)))
        return
    table = Table("time", "request id", "key", "agent", "model", "status", "tokens in/out", "ms", "cost USD")
    for row in rows:
        table.add_row(
            row.created_at.strftime("%H:%M:%S"),
            row.request_id,
            row.key_id or "",
            row.agent_id or "",
            row.model or "",
            f"{row.http_status} {row.error_code or row.status}",
            f"{row.prompt_tokens}/{row.completion_tokens}",
            f"{row.latency_ms:.1f}",
            format_usd(row.cost_nano),
        )
    out.print(table)


@logs_app.command("show")
def logs_show(
    request_id: Annotated[str, typer.Argument(help="The request id (response header alephant-request-id).")],
    config: ConfigOption = None,
) -> None:
    """Show one request-log row, every field."""
    from .storage import LogQuery

    settings = _settings(config)
    row = _with_store(settings, lambda db: LogQuery(db).get(request_id))
    if row is None:
        raise _fail(f"no request with id {request_id!r}")
    print(json.dumps(_row_json(row), indent=2))


def _plugin_commands() -> None:
    """Commands other packages contribute through the ``alephant.commands`` entry point group."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="alephant.commands"):
        app.command(name=entry.name)(entry.load())


def main() -> None:
    _plugin_commands()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
