"""Resolution of the master (admin) key: ``ALEPHANT_MASTER_KEY``, else a file under the data directory.

On the first embedded run the file is created with a fresh random key and mode 0600, so ``make run`` works
with no setup and the key never appears in a log or on the terminal: users read it from the file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .config import Settings

__all__ = ["MASTER_KEY_FILE", "master_key_path", "resolve_master_key"]

MASTER_KEY_FILE = "master.key"


def master_key_path(settings: Settings) -> Path:
    return settings.data_dir / MASTER_KEY_FILE


def resolve_master_key(settings: Settings) -> str:
    if settings.master_key is not None and settings.master_key.get_secret_value():
        return settings.master_key.get_secret_value()
    path = master_key_path(settings)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "alk_master_" + secrets.token_urlsafe(30)
    # O_EXCL: two processes starting at once must not both write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key
