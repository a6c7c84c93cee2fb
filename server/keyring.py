"""The in-memory key snapshot that authentication reads on the hot path (no query per request).

The snapshot maps the SHA-256 of each live key to its record. A background task polls one counter row
(``state_version``) every ``key_refresh_interval`` seconds and reloads the snapshot when the counter moved,
so a key created or revoked by the CLI, another replica or the admin API takes effect within that interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from datetime import UTC, datetime

from .call import Principal
from .storage import KeyRecord, KeyStore, hash_secret

__all__ = ["MASTER_KEY_ID", "Keyring", "Rejection"]

MASTER_KEY_ID = "master"
_log = logging.getLogger("alephant.keys")


class Rejection(Exception):
    """Why a presented key is not accepted; the message is safe to return to the caller."""


class Keyring:
    def __init__(self, store: KeyStore, *, master_key: str, refresh_interval: float) -> None:
        self._store = store
        self._master_hash = hash_secret(master_key)
        self._interval = refresh_interval
        self._by_hash: dict[str, KeyRecord] = {}
        self._version = -1
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Reload the snapshot if the stored version moved (and on the first call)."""
        version = await self._store.version()
        if version == self._version:
            return
        records = await self._store.active()
        self._by_hash = {record.key_hash: record for record in records}
        self._version = version

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="alephant-keyring")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.load()
            except Exception as exc:  # the store may be briefly down; keep serving the last snapshot
                _log.warning("key snapshot refresh failed, keeping the previous one: %s", type(exc).__name__)

    def authenticate(self, secret: str, *, now: datetime | None = None) -> Principal:
        digest = hash_secret(secret)
        if hmac.compare_digest(digest, self._master_hash):
            return Principal(key_id=MASTER_KEY_ID, workspace_id="default")
        record = self._by_hash.get(digest)
        if record is None:
            raise Rejection("Invalid or revoked API key. Create one with `alephant keys create --name NAME`.")
        if record.expires_at is not None and record.expires_at <= (now or datetime.now(tz=UTC)):
            raise Rejection(f"API key {record.prefix}... expired at {record.expires_at.isoformat()}. Create a new one.")
        return Principal(key_id=record.id, workspace_id=record.workspace_id, models=record.models)
