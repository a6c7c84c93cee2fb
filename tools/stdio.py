"""``alephant mcp``: the MCP server over stdio, for clients that launch their servers as subprocesses.

The process runs the gateway's services itself (same settings, same store, same pipeline), so a tool call is
governed and logged exactly as over HTTP. The key comes from ``ALEPHANT_API_KEY``; the agent context from
``ALEPHANT_AGENT_ID``, ``ALEPHANT_RUN_ID`` and ``ALEPHANT_SESSION_ID`` (tool arguments override them).
stdout carries the protocol only: every message for a person goes to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from server.config import Settings

__all__ = ["command"]

KEY_ENV = "ALEPHANT_API_KEY"
_CONTEXT_ENV = (
    ("ALEPHANT_AGENT_ID", "alephant-agent-id"),
    ("ALEPHANT_RUN_ID", "alephant-run-id"),
    ("ALEPHANT_SESSION_ID", "alephant-session-id"),
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


async def _serve(settings: Settings, key: str) -> None:
    from server.app import services_lifespan
    from server.errors import GatewayError
    from server.pipeline import build_pipeline
    from server.stages import STAGES, authenticate_request, dispatch

    from .mcp_server import GatewayContext, build_server, fixed_context

    headers = {"authorization": f"Bearer {key}"}
    headers.update({header: os.environ[env] for env, header in _CONTEXT_ENV if os.environ.get(env)})
    async with services_lifespan(settings) as services:
        try:
            authenticate_request(services.keyring, headers["authorization"])
        except GatewayError as exc:
            raise _fail(f"{KEY_ENV}: {exc.message}") from None
        context = GatewayContext(
            services=services, pipeline=build_pipeline(STAGES, dispatch, services), headers=headers
        )
        await build_server(fixed_context(context)).run_stdio_async()


def command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to alephant.yaml (default: ./alephant.yaml if present)."),
    ] = None,
) -> None:
    """Serve the MCP tools over stdio (key from ALEPHANT_API_KEY; agent context from ALEPHANT_AGENT_ID etc.)."""
    # The CLI loads this module for every command, `--help` included, so the gateway and the MCP SDK load only here.
    import anyio

    from server.config import ConfigError, load_settings

    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise _fail(f"set {KEY_ENV} to a virtual key (alephant keys create --name mcp)")
    if config is not None and not config.is_file():
        raise _fail(f"{config}: no such file")
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    anyio.run(_serve, settings, key)
