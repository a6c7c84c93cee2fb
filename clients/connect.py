"""`alephant connect <client>`: the exact environment or config file that points an agent client at the gateway.

This package knows only the gateway's public contract (its URLs and headers), never its code; the CLI finds
the command through the ``alephant.commands`` entry point, so ``server`` does not import ``clients``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "claude_code", "claude_code_mcp_json", "codex", "cursor", "cursor_mcp_json", "opencode"]

app = typer.Typer(help="Print how to point an agent client (Claude Code, Cursor, Codex, opencode) at the gateway.")

DEFAULT_URL = "http://127.0.0.1:8787"
DEFAULT_MODEL = "mock/mock-1"
KEY_ENV = "ALEPHANT_API_KEY"


def claude_code_mcp_json(base_url: str) -> dict[str, Any]:
    """Project-scoped MCP servers for Claude Code (``.mcp.json``); it expands ``${VAR}`` in headers."""
    return {
        "mcpServers": {
            "alephant": {
                "type": "http",
                "url": f"{base_url}/mcp",
                "headers": {"Authorization": f"Bearer ${{{KEY_ENV}}}"},
            }
        }
    }


def claude_code(base_url: str, model: str) -> str:
    """Claude Code speaks Anthropic Messages: it needs the gateway root (it appends /v1/messages).

    The MCP tools are a separate connection: ``claude mcp add`` (or a ``.mcp.json`` in the project).
    """
    return "\n".join(
        [
            "# Claude Code -> Alephant (Anthropic Messages at /v1/messages)",
            f"export ANTHROPIC_BASE_URL={base_url}",
            f'export ANTHROPIC_API_KEY="${KEY_ENV}"        # a virtual key: alephant keys create --name claude-code',
            f"export ANTHROPIC_MODEL={model}",
            f"export ANTHROPIC_SMALL_FAST_MODEL={model}",
            "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
            "claude",
            "",
            "# Alephant's MCP tools (chat, list_models) in Claude Code:",
            f'claude mcp add --transport http alephant {base_url}/mcp --header "Authorization: Bearer ${KEY_ENV}"',
            "# or this .mcp.json in the project (alephant connect claude-code --write writes it):",
            json.dumps(claude_code_mcp_json(base_url), indent=2),
        ]
    )


def cursor_mcp_json(base_url: str) -> dict[str, Any]:
    """Cursor's ``.cursor/mcp.json``; it interpolates ``${env:VAR}``."""
    return {
        "mcpServers": {
            "alephant": {"url": f"{base_url}/mcp", "headers": {"Authorization": f"Bearer ${{env:{KEY_ENV}}}"}}
        }
    }


def cursor(base_url: str, model: str) -> str:
    """Cursor reaches the gateway's MCP tools at /mcp (its own model settings are not an OpenAI base URL)."""
    return (
        "# Cursor -> Alephant MCP tools (Streamable HTTP at /mcp). .cursor/mcp.json"
        " (alephant connect cursor --write writes it):\n"
        + json.dumps(cursor_mcp_json(base_url), indent=2)
        + f"\n\n# then start Cursor with {KEY_ENV}=<virtual key> in its environment"
    )


def codex_config(base_url: str, model: str) -> str:
    return "\n".join(
        [
            f'model = "{model}"',
            'model_provider = "alephant"',
            "",
            "[model_providers.alephant]",
            'name = "Alephant"',
            f'base_url = "{base_url}/v1"',
            f'env_key = "{KEY_ENV}"',
            'wire_api = "responses"',
        ]
    )


def codex(base_url: str, model: str) -> str:
    """Codex speaks the Responses API; a custom model provider in ~/.codex/config.toml points it here."""
    return (
        "# Codex -> Alephant (OpenAI Responses at /v1/responses). Add to ~/.codex/config.toml:\n"
        + codex_config(base_url, model)
        + f'\n\n# then: export {KEY_ENV}=<virtual key>; codex exec --skip-git-repo-check "hello"'
    )


def opencode_config(base_url: str, model: str) -> dict[str, object]:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "alephant": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Alephant",
                "options": {"baseURL": f"{base_url}/v1", "apiKey": f"{{env:{KEY_ENV}}}"},
                "models": {model: {"name": model}},
            }
        },
        "model": f"alephant/{model}",
    }


def opencode(base_url: str, model: str) -> str:
    """opencode speaks Chat Completions through the AI SDK's openai-compatible provider (opencode.json)."""
    return (
        "# opencode -> Alephant (Chat Completions at /v1/chat/completions). opencode.json:\n"
        + json.dumps(opencode_config(base_url, model), indent=2)
        + f'\n\n# then: export {KEY_ENV}=<virtual key>; opencode run "hello"'
    )


_CLIENTS = {"claude-code": claude_code, "cursor": cursor, "codex": codex, "opencode": opencode}
_MCP_FILES: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "claude-code": (".mcp.json", claude_code_mcp_json),
    "cursor": (".cursor/mcp.json", cursor_mcp_json),
}


def write_mcp_config(client: str, base_url: str, directory: Path) -> Path:
    """Add the ``alephant`` server to CLIENT's MCP config file under DIRECTORY, keeping its other servers."""
    name, render = _MCP_FILES[client]
    path = directory / name
    existing: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(existing.get("mcpServers", {}), dict):
        raise ValueError(f"{path}: 'mcpServers' is not an object")
    existing.setdefault("mcpServers", {}).update(render(base_url)["mcpServers"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n")
    return path


@app.command()
def connect(
    client: Annotated[str, typer.Argument(help="claude-code, cursor, codex or opencode")],
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = DEFAULT_URL,
    model: Annotated[str, typer.Option(help="The model the client should ask for.")] = DEFAULT_MODEL,
    write: Annotated[
        bool, typer.Option("--write", help="Write the MCP config file (.mcp.json, .cursor/mcp.json) instead.")
    ] = False,
    directory: Annotated[Path, typer.Option("--dir", help="The project directory --write writes into.")] = Path(),
) -> None:
    """Print the environment or config that points CLIENT at the gateway (--write: write its MCP config)."""
    render = _CLIENTS.get(client)
    if render is None:
        typer.echo(f"error: unknown client {client!r}; choose one of {', '.join(_CLIENTS)}", err=True)
        raise typer.Exit(2)
    if not write:
        typer.echo(render(url.rstrip("/"), model))
        return
    if client not in _MCP_FILES:
        typer.echo(f"error: --write is for {' and '.join(_MCP_FILES)} (their MCP config files)", err=True)
        raise typer.Exit(2)
    try:
        path = write_mcp_config(client, url.rstrip("/"), directory)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {path} (the alephant server; set {KEY_ENV} in the client's environment)")
