"""``alephant workspaces|departments|agents|provider-keys|master-key``: governance entities from the terminal.

They act on the store the server uses (same settings); running gateways pick changes up within
``key_refresh_interval``. Secrets never go on the command line (where ``ps`` and shell history would keep
them): provider keys come from an environment variable or a hidden prompt, a new master key likewise.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from .cli_output import ConfigOption, JsonOption, err, fail, out

if TYPE_CHECKING:
    from .config import Settings
    from .storage import Database

__all__ = ["agents_app", "departments_app", "master_key_app", "policy_options", "provider_keys_app", "workspaces_app"]

workspaces_app = typer.Typer(help="Create, list and delete workspaces.", no_args_is_help=True)
departments_app = typer.Typer(help="Create, list and delete departments of a workspace.", no_args_is_help=True)
agents_app = typer.Typer(
    help="Register, list, show and delete agents (Agent IDs) of a workspace.", no_args_is_help=True
)
provider_keys_app = typer.Typer(help="Bring your own provider keys (stored encrypted).", no_args_is_help=True)
master_key_app = typer.Typer(help="Rotate the master key (re-encrypts every provider key).", no_args_is_help=True)

T = TypeVar("T")

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="The workspace.")]
AllowOption = Annotated[str | None, typer.Option("--models", help="Allowed models, globs: 'openai/*,mock/*'.")]
DenyOption = Annotated[str | None, typer.Option("--deny-models", help="Denied models, globs (deny wins).")]
ProvidersOption = Annotated[str | None, typer.Option("--providers", help="Allowed providers: 'openai,anthropic'.")]
MaxTokensOption = Annotated[int | None, typer.Option("--max-tokens", help="Largest max_tokens a request may ask.")]


def _settings(config: Path | None) -> Settings:
    from .config import ConfigError, load_settings

    if config is not None and not config.is_file():
        raise fail(f"{config}: no such file")
    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {exc.source}: {problem}", highlight=False)
        raise typer.Exit(2) from None


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    import asyncio

    from .storage import Database
    from .storage.governance import Conflict, InUse, Unknown

    async def run() -> T:
        async with Database(settings.resolved_database_url) as database:
            await database.migrate()
            return await work(database)

    try:
        return asyncio.run(run())
    except (Conflict, InUse, Unknown) as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the store: {exc}") from None


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def policy_options(
    allow: str | None, deny: str | None, providers: str | None, max_tokens: int | None, *, with_allow: bool = True
) -> dict[str, Any]:
    """The policy JSON for these flags, validated as the admin API validates it; unset fields are left out."""
    from pydantic import ValidationError

    from .governance.policy import PolicySpec

    try:
        spec = PolicySpec(
            allow_models=_split(allow) if with_allow else [],
            deny_models=_split(deny),
            providers=_split(providers),
            max_tokens=max_tokens,
        )
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        raise fail(f"--{str(problem['loc'][0]).replace('_', '-')}: {problem['msg']}") from None
    return spec.model_dump(exclude_defaults=True)


def _print(rows: list[dict[str, Any]], columns: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value) if value else ""
    return str(value)


def _asdict(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__ if name != "ciphertext"}


# --- workspaces ---


@workspaces_app.command("create")
def workspaces_create(
    workspace_id: Annotated[str, typer.Argument(help="The workspace id (letters, digits, . - _ :).")],
    name: Annotated[str | None, typer.Option(help="A display name (default: the id).")] = None,
    time_zone: Annotated[str, typer.Option("--time-zone", help="IANA name, for budget periods.")] = "UTC",
    models: AllowOption = None,
    deny_models: DenyOption = None,
    providers: ProvidersOption = None,
    max_tokens: MaxTokensOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a workspace with its model policy."""
    from pydantic import ValidationError

    from .governance.models import WorkspaceIn
    from .governance.policy import PolicySpec
    from .storage.governance import GovernanceStore

    try:
        body = WorkspaceIn(
            id=workspace_id,
            name=name,
            time_zone=time_zone,
            policy=PolicySpec(**policy_options(models, deny_models, providers, max_tokens)),
        )
    except ValidationError as exc:
        raise fail(exc.errors(include_url=False)[0]["msg"]) from None
    settings = _settings(config)
    record = _run(
        settings,
        lambda db: GovernanceStore(db).create_workspace(
            id=body.id, name=body.name or body.id, time_zone=body.time_zone, policy=body.policy.model_dump()
        ),
    )
    _print([_asdict(record)], ("id", "name", "time_zone", "policy"), as_json)


@workspaces_app.command("list")
def workspaces_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List workspaces."""
    from .storage.governance import GovernanceStore

    records = _run(_settings(config), lambda db: GovernanceStore(db).workspaces())
    _print([_asdict(r) for r in records], ("id", "name", "time_zone", "policy", "created_at"), as_json)


@workspaces_app.command("delete")
def workspaces_delete(
    workspace_id: Annotated[str, typer.Argument(help="The workspace id.")], config: ConfigOption = None
) -> None:
    """Delete a workspace that owns nothing any more (never 'default'); its log rows and ledger entries stay."""
    from .storage.governance import GovernanceStore

    record = _run(_settings(config), lambda db: GovernanceStore(db).delete_workspace(workspace_id))
    out.print(f"Deleted workspace {record.id}.", highlight=False)


# --- departments ---


@departments_app.command("create")
def departments_create(
    name: Annotated[str, typer.Option("--name", "-n", help="The department's name, unique in its workspace.")],
    workspace: WorkspaceOption = "default",
    department_id: Annotated[str | None, typer.Option("--id", help="Its id (default: dep_...).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a department."""
    from .storage.governance import GovernanceStore

    record = _run(
        _settings(config),
        lambda db: GovernanceStore(db).create_department(workspace_id=workspace, name=name, id=department_id),
    )
    _print([_asdict(record)], ("id", "workspace_id", "name"), as_json)


@departments_app.command("list")
def departments_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's departments."""
    from .storage.governance import GovernanceStore

    records = _run(_settings(config), lambda db: GovernanceStore(db).departments(workspace))
    _print([_asdict(r) for r in records], ("id", "workspace_id", "name", "created_at"), as_json)


@departments_app.command("delete")
def departments_delete(
    department_id: Annotated[str, typer.Argument(help="The department's id (dep_...).")],
    workspace: WorkspaceOption = "default",
    config: ConfigOption = None,
) -> None:
    """Delete a department no live key, agent or budget refers to."""
    from .storage.governance import GovernanceStore

    record = _run(_settings(config), lambda db: GovernanceStore(db).delete_department(workspace, department_id))
    out.print(f"Deleted department {record.id} ({record.name}).", highlight=False)


# --- agents ---


@agents_app.command("create")
def agents_create(
    agent_id: Annotated[str, typer.Argument(help="The Agent ID, as sent in Alephant-Agent-Id.")],
    workspace: WorkspaceOption = "default",
    department: Annotated[str | None, typer.Option(help="Department id.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for the agent.")] = None,
    description: Annotated[str | None, typer.Option(help="What the agent does.")] = None,
    models: AllowOption = None,
    deny_models: DenyOption = None,
    providers: ProvidersOption = None,
    max_tokens: MaxTokensOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Register an agent with its model policy."""
    from pydantic import ValidationError

    from .governance.models import AgentIn
    from .governance.policy import PolicySpec
    from .storage.governance import GovernanceStore

    try:
        body = AgentIn(
            id=agent_id,
            department_id=department,
            owner=owner,
            description=description,
            policy=PolicySpec(**policy_options(models, deny_models, providers, max_tokens)),
        )
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        raise fail(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None
    record = _run(
        _settings(config),
        lambda db: GovernanceStore(db).create_agent(
            workspace_id=workspace,
            id=body.id,
            department_id=body.department_id,
            owner=body.owner,
            description=body.description,
            policy=body.policy.model_dump(),
        ),
    )
    _print([_asdict(record)], ("id", "workspace_id", "department_id", "owner", "policy"), as_json)


@agents_app.command("list")
def agents_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's agents."""
    from .storage.governance import GovernanceStore

    records = _run(_settings(config), lambda db: GovernanceStore(db).agents(workspace))
    _print([_asdict(r) for r in records], ("id", "department_id", "owner", "description", "policy"), as_json)


@agents_app.command("show")
def agents_show(
    agent_id: Annotated[str, typer.Argument(help="The Agent ID.")],
    workspace: WorkspaceOption = "default",
    config: ConfigOption = None,
) -> None:
    """Show one agent as JSON."""
    from .storage.governance import GovernanceStore

    record = _run(_settings(config), lambda db: GovernanceStore(db).agent(workspace, agent_id))
    print(json.dumps(_asdict(record), default=str, indent=2))


@agents_app.command("delete")
def agents_delete(
    agent_id: Annotated[str, typer.Argument(help="The Agent ID.")],
    workspace: WorkspaceOption = "default",
    config: ConfigOption = None,
) -> None:
    """Delete an agent no live key, budget, limit or wallet refers to; its log rows keep its id."""
    from .storage.governance import GovernanceStore

    record = _run(_settings(config), lambda db: GovernanceStore(db).delete_agent(workspace, agent_id))
    out.print(f"Deleted agent {record.id} from workspace {record.workspace_id}.", highlight=False)


# --- provider keys ---


def _secret_from(env: str | None, prompt: str) -> str:
    if env is not None:
        value = os.environ.get(env, "")
        if not value.strip():
            raise fail(f"environment variable {env} is empty or not set")
        return value.strip()
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    value = typer.prompt(prompt, hide_input=True)
    return str(value).strip()


@provider_keys_app.command("add")
def provider_keys_add(
    provider: Annotated[str, typer.Option(help="Catalog provider id, e.g. openai.")],
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the key.")],
    workspace: WorkspaceOption = "default",
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Read the key from this environment variable (else stdin).")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Add a provider key for a workspace; its calls then use it instead of the gateway environment's."""
    from .app import build_catalog  # the whole gateway: imported only by the command that needs the catalog
    from .governance.crypto import SecretBox
    from .master_key import resolve_master_key
    from .storage.governance import GovernanceStore

    settings = _settings(config)
    if build_catalog(settings).provider(provider) is None:
        raise fail(f"unknown provider {provider!r} (alephant models --all lists them)")
    secret = _secret_from(secret_env, f"{provider} API key")
    if not secret:
        raise fail("the provider key is empty")
    box = SecretBox(resolve_master_key(settings))
    record = _run(
        settings,
        lambda db: GovernanceStore(db).add_provider_key(
            workspace_id=workspace, provider=provider, name=name, secret=secret, box=box
        ),
    )
    _print([_asdict(record)], ("id", "workspace_id", "provider", "name", "created_at"), as_json)


@provider_keys_app.command("list")
def provider_keys_list(
    workspace: WorkspaceOption = "default",
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List a workspace's provider keys (never the keys themselves)."""
    from .storage.governance import GovernanceStore

    records = _run(_settings(config), lambda db: GovernanceStore(db).provider_keys(workspace, include_revoked=all_keys))
    _print([_asdict(r) for r in records], ("id", "provider", "name", "created_at", "revoked_at"), as_json)


@provider_keys_app.command("revoke")
def provider_keys_revoke(
    provider_key_id: Annotated[str, typer.Argument(help="The provider key's id (pk_...).")],
    workspace: WorkspaceOption = "default",
    config: ConfigOption = None,
) -> None:
    """Revoke a provider key; the workspace falls back to the environment's key."""
    from .storage.governance import GovernanceStore

    record = _run(_settings(config), lambda db: GovernanceStore(db).revoke_provider_key(workspace, provider_key_id))
    out.print(f"Revoked provider key {record.id} ({record.provider}, {record.name}).")


# --- master key ---


@master_key_app.command("rotate")
def master_key_rotate(
    new_key_env: Annotated[
        str | None, typer.Option("--new-key-env", help="Read the new master key from this environment variable.")
    ] = None,
    generate: Annotated[bool, typer.Option("--generate", help="Generate a new random master key.")] = False,
    config: ConfigOption = None,
) -> None:
    """Re-encrypt every provider key under a new master key, in one transaction.

    With the master key in a file (the embedded default) the file is replaced; with ALEPHANT_MASTER_KEY, set it
    to the new key and restart the gateways (until then they keep the keys they had loaded).
    """
    from .governance.crypto import SealError, SecretBox
    from .master_key import master_key_path, resolve_master_key
    from .storage.governance import GovernanceStore

    if generate == (new_key_env is not None):
        raise fail("give exactly one of --new-key-env VAR or --generate")
    settings = _settings(config)
    old = resolve_master_key(settings)
    new = "alk_master_" + secrets.token_urlsafe(30) if generate else _secret_from(new_key_env, "new master key")
    if len(new) < 32:
        raise fail("the new master key must be at least 32 characters")
    if new == old:
        raise fail("the new master key is the current one")
    try:
        count = _run(settings, lambda db: GovernanceStore(db).reseal_provider_keys(SecretBox(old), SecretBox(new)))
    except SealError as exc:
        raise fail(f"nothing changed: a provider key cannot be opened with the current master key ({exc})") from None
    from_env = settings.master_key is not None and bool(settings.master_key.get_secret_value())
    if from_env:
        out.print(f"Re-encrypted {count} provider keys. Set ALEPHANT_MASTER_KEY to the new key and restart gateways.")
        if generate:
            out.print("New master key (shown once):", highlight=False)
            print(new)
        return
    path = master_key_path(settings)
    temporary = path.with_suffix(".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(new + "\n")
    temporary.replace(path)
    out.print(f"Re-encrypted {count} provider keys; {path} holds the new master key. Restart gateways to use it.")
