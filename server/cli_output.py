"""What every ``alephant`` command module shares: its two consoles, the one-line failure, the common options.

Light on purpose (typer and rich only): the CLI imports every command module to build ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["ConfigOption", "JsonOption", "err", "fail", "out"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Path to alephant.yaml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (2: bad input, the default)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)
