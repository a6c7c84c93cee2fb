"""`alephant connect <client>`: the exact environment or config file that points an agent client at the gateway.

This package knows only the gateway's public contract (its URLs and headers), never its code; the CLI finds
the command through the ``alephant.commands`` entry point, so ``server`` does not import ``clients``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["app", "claude_code", "codex", "opencode"]

app = typer.Typer(help="Print how to point an agent client (Claude Code, Codex, opencode) at the gateway.")

DEFAULT_URL = "http://127.0.0.1:8787"
DEFAULT_MODEL = "mock/mock-1"
KEY_ENV = "ALEPHANT_API_KEY"


def claude_code(base_url: str, model: str) -> str:
    """Claude Code speaks Anthropic Messages: it needs the gateway root (it appends /v1/messages)."""
    return "\n".join(
        [
            "# Claude Code -> Alephant (Anthropic Messages at /v1/messages)",
            f"export ANTHROPIC_BASE_URL={base_url}",
            f'export ANTHROPIC_API_KEY="${KEY_ENV}"        # a virtual key: alephant keys create --name claude-code',
            f"export ANTHROPIC_MODEL={model}",
            f"export ANTHROPIC_SMALL_FAST_MODEL={model}",
            "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
            "claude",
        ]
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


_CLIENTS = {"claude-code": claude_code, "codex": codex, "opencode": opencode}


@app.command()
def connect(
    client: Annotated[str, typer.Argument(help="claude-code, codex or opencode")],
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = DEFAULT_URL,
    model: Annotated[str, typer.Option(help="The model the client should ask for.")] = DEFAULT_MODEL,
) -> None:
    """Print the environment or config that points CLIENT at the gateway."""
    render = _CLIENTS.get(client)
    if render is None:
        typer.echo(f"error: unknown client {client!r}; choose one of {', '.join(_CLIENTS)}", err=True)
        raise typer.Exit(2)
    typer.echo(render(url.rstrip("/"), model))
