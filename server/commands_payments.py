"""``alephant paid-endpoints`` and ``alephant wallets``: sell routes per call, give agents wallets to pay with.

They act on the store the server uses (same settings). A paid-endpoint change bumps ``state_version('payments')``,
so running gateways serve it within ``key_refresh_interval``; a wallet is read when its agent pays. A wallet's
private key is sealed with the master key before it is stored and is never printed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from finance.money import format_usd
from finance.payments import TermsError

from .cli_output import ConfigOption, JsonOption, fail, out

if TYPE_CHECKING:
    from .config import Settings
    from .payments.store import PaymentStore

__all__ = ["paid_endpoints_app", "wallets_app"]

paid_endpoints_app = typer.Typer(help="Create, list and delete paid endpoints (x402 and MPP).", no_args_is_help=True)
wallets_app = typer.Typer(help="Create and list agents' wallets for outbound payments.", no_args_is_help=True)

T = TypeVar("T")

WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="Workspace it belongs to.")]


def _settings(config: Path | None) -> Settings:
    from .config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _with_store(settings: Settings, work: Callable[[PaymentStore], Awaitable[T]]) -> T:
    import asyncio

    from .payments.store import PaymentStore
    from .storage import Database

    async def run() -> T:
        async with Database(settings.resolved_database_url) as database:
            await database.migrate()
            return await work(PaymentStore(database))

    try:
        return asyncio.run(run())
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the store: {type(exc).__name__}", code=1) from None


@paid_endpoints_app.command("create")
def paid_endpoints_create(
    path: Annotated[str, typer.Option(help="The gateway path it answers, e.g. /paid/weather.")],
    target: Annotated[str, typer.Option(help="An upstream http(s) URL, or model:provider/model.")],
    price: Annotated[str, typer.Option(help="USD per call, as a decimal, e.g. 0.01.")],
    pay_to: Annotated[str, typer.Option(help="The 0x address that receives the payments.")],
    network: Annotated[str, typer.Option(help="CAIP-2 chain id.")] = "eip155:84532",
    asset: Annotated[str | None, typer.Option(help="Token address; default the network's USDC.")] = None,
    description: Annotated[str, typer.Option(help="Shown to payers in the challenge.")] = "",
    workspace: WorkspaceOption = "default",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Sell a path per call, e.g. `alephant paid-endpoints create --path /paid/x --target model:mock/mock-1 ...`."""
    from pydantic import ValidationError

    from .payments.endpoints import PaidEndpointIn, endpoint_json, endpoint_row
    from .payments.store import EndpointExists

    settings = _settings(config)
    try:
        body = PaidEndpointIn(
            path=path,
            target=target,
            price_usd=Decimal(price),
            network=network,
            asset=asset,
            pay_to=pay_to,
            description=description,
        )
        row = endpoint_row(body, workspace)
    except InvalidOperation:
        raise fail(f"--price: got {price!r}, expected a decimal amount of USD such as 0.01") from None
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise fail(problems) from None
    except TermsError as exc:
        raise fail(str(exc)) from None
    if any(configured.path == path for configured in settings.paid_endpoints.values()):
        raise fail(f"--path: {path} is already a paid endpoint of alephant.yaml")
    try:
        stored = _with_store(settings, lambda store: store.create_endpoint(**row))
    except EndpointExists:
        raise fail(f"--path: {path} is already a paid endpoint (`alephant paid-endpoints list`)") from None
    if as_json:
        print(json.dumps(endpoint_json(stored)))
        return
    out.print(f"created paid endpoint {stored['id']}: {path} for {format_usd(stored['price_nano'])} USD per call")


@paid_endpoints_app.command("list")
def paid_endpoints_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's stored paid endpoints (those of alephant.yaml are in the file)."""
    from .payments.endpoints import endpoint_json

    rows = [
        endpoint_json(row)
        for row in _with_store(_settings(config), lambda store: store.endpoints())
        if row["workspace_id"] == workspace
    ]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("id", "path", "target", "price USD", "network", "pay to")
    for row in rows:
        table.add_row(row["id"], row["path"], row["target"], row["price_usd"], row["network"], row["pay_to"])
    out.print(table)


@paid_endpoints_app.command("delete")
def paid_endpoints_delete(
    endpoint_id: str, workspace: WorkspaceOption = "default", config: ConfigOption = None
) -> None:
    """Stop selling a paid endpoint (by id)."""
    if not _with_store(_settings(config), lambda store: store.delete_endpoint(workspace, endpoint_id)):
        raise fail(f"no paid endpoint {endpoint_id!r} in workspace {workspace!r} (`alephant paid-endpoints list`)", 1)
    out.print(f"deleted paid endpoint {endpoint_id}")


@wallets_app.command("create")
def wallets_create(
    agent: Annotated[str, typer.Option(help="The agent (its Alephant-Agent-Id) that pays with it.")],
    max_price: Annotated[str | None, typer.Option(help="Ceiling of one payment, USD (default the config's).")] = None,
    allowed_origin: Annotated[
        list[str] | None, typer.Option(help="scheme://host[:port] it may pay, repeatable; none: any.")
    ] = None,
    allowed_recipient: Annotated[list[str] | None, typer.Option(help="0x address it may pay, repeatable.")] = None,
    allowed_network: Annotated[list[str] | None, typer.Option(help="CAIP-2 network it may pay on, repeatable.")] = None,
    workspace: WorkspaceOption = "default",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Give an agent a wallet (a fresh EVM key, sealed with the master key; only its address is shown)."""
    from .governance.crypto import SecretBox
    from .master_key import resolve_master_key
    from .payments.store import WalletExists
    from .payments.wallets import new_wallet, wallet_json

    if not agent.strip():
        raise fail("--agent must not be empty")
    policy: dict[str, Any] = {}
    if max_price is not None:
        try:
            if Decimal(max_price) <= 0:
                raise InvalidOperation
        except InvalidOperation:
            raise fail(f"--max-price: got {max_price!r}, expected a positive amount of USD such as 0.50") from None
        policy["max_price_usd"] = max_price
    for name, values in (
        ("allowed_origins", allowed_origin),
        ("allowed_recipients", allowed_recipient),
        ("allowed_networks", allowed_network),
    ):
        if values:
            policy[name] = list(values)
    settings = _settings(config)
    wallet = new_wallet(SecretBox(resolve_master_key(settings)), workspace, agent)
    try:
        stored = _with_store(settings, lambda store: store.create_wallet(**{**wallet, "policy": policy}))
    except WalletExists:
        raise fail(f"--agent: agent {agent!r} already has a wallet in workspace {workspace!r}") from None
    if as_json:
        print(json.dumps(wallet_json(stored)))
        return
    out.print(f"created wallet {stored['id']} for agent {agent}: address {stored['address']}")


@wallets_app.command("list")
def wallets_list(
    workspace: WorkspaceOption = "default", as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """List a workspace's wallets (addresses and policies, never keys)."""
    from .payments.wallets import wallet_json

    rows = [wallet_json(row) for row in _with_store(_settings(config), lambda store: store.wallets(workspace))]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("id", "agent", "address", "policy")
    for row in rows:
        table.add_row(row["id"], row["agent_id"], row["address"], json.dumps(row["policy"]))
    out.print(table)
