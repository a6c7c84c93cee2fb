"""The in-memory snapshot that authentication and policy read on the hot path (no query per request).

The snapshot maps the SHA-256 of each live key to its record and ready-made ``Principal``, and holds the
governance snapshot (``server.governance.Governance``: policy layers, registered agents, provider keys opened
once). A background task polls one counter row (``state_version``) every ``key_refresh_interval`` seconds and
reloads everything when the counter moved, so a key, policy or provider key changed by the CLI, another replica
or the admin API takes effect within that interval.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from .call import Principal
from .governance.crypto import SecretBox
from .governance.policy import ModelPolicy
from .governance.snapshot import Governance
from .polling import Poller
from .storage import KeyRecord, KeyStore, hash_secret
from .storage.governance import DEFAULT_WORKSPACE, GovernanceStore

__all__ = ["MASTER_KEY_ID", "Keyring", "Rejection"]

MASTER_KEY_ID = "master"
_log = logging.getLogger("alephant.keys")


class Rejection(Exception):
    """Why a presented key is not accepted; the message is safe to return to the caller."""


def _principal(record: KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        workspace_id=record.workspace_id,
        models=record.models,
        department_id=record.department_id,
        agent_id=record.agent_id,
        scopes=record.scopes,
    )


class Keyring:
    def __init__(self, store: KeyStore, *, master_key: str, refresh_interval: float) -> None:
        self._store = store
        self._governance_store = GovernanceStore(store.database)
        self._box = SecretBox(master_key)
        self._master_hash = hash_secret(master_key)
        self._master = Principal(key_id=MASTER_KEY_ID, workspace_id=DEFAULT_WORKSPACE)
        self._interval = refresh_interval
        self._by_hash: dict[str, tuple[KeyRecord, Principal]] = {}
        self.governance = Governance()
        self._version = -1
        self._poller = Poller(
            self.load,
            interval=refresh_interval,
            name="alephant-keyring",
            failure="key snapshot refresh failed, keeping the previous one",
        )

    @property
    def box(self) -> SecretBox:
        """Seals provider keys for this gateway's master key (the admin API adds keys with it)."""
        return self._box

    async def load(self) -> None:
        """Reload the snapshot if the stored version moved (and on the first call)."""
        version = await self._store.version()
        if version == self._version:
            return
        records = await self._store.active()
        store = self._governance_store
        governance = Governance.build(
            workspaces=await store.workspaces(),
            agents=await store.agents(),
            key_policies=[(r.id, ModelPolicy.parse(r.policy, allow=r.models)) for r in records],
            provider_keys=await store.provider_keys(),
            box=self._box,
        )
        self._by_hash = {record.key_hash: (record, _principal(record)) for record in records}
        self.governance = governance
        self._version = version

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    def authenticate(self, secret: str, *, now: datetime | None = None) -> Principal:
        digest = hash_secret(secret)
        if hmac.compare_digest(digest, self._master_hash):
            return self._master
        found = self._by_hash.get(digest)
        if found is None:
            raise Rejection("Invalid or revoked API key. Create one with `alephant keys create --name NAME`.")
        record, principal = found
        if record.expires_at is not None and record.expires_at <= (now or datetime.now(tz=UTC)):
            raise Rejection(f"API key {record.prefix}... expired at {record.expires_at.isoformat()}. Create a new one.")
        return principal
