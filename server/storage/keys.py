"""Virtual keys: minting, listing and revoking them, and the version counter gateways poll to reload keys.

A secret is handed out once, at creation, and never stored: only its SHA-256 digest (to authenticate) and a
short visible prefix (to tell keys apart in listings) reach the database.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.database import Database
from server.storage.governance import GovernanceStore, ensure_workspace
from server.storage.records import KeyRecord
from server.storage.schema import api_keys, as_utc, state_version
from server.storage.state import KEYS_STATE, bump_version

__all__ = ["KEYS_STATE", "KeyStore", "hash_secret", "new_secret", "secret_prefix"]

SECRET_MARKER = "alk_"
SECRET_RANDOM_BYTES = 30  # exactly 40 url-safe base64 characters: 240 random bits
VISIBLE_PREFIX_CHARS = 12


def new_secret() -> str:
    """A fresh key secret; the marker lets secret scanners and humans recognise a leaked one."""
    return SECRET_MARKER + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def secret_prefix(secret: str) -> str:
    """The part of a secret that is safe to show: the marker plus 8 random characters (48 bits)."""
    return secret[:VISIBLE_PREFIX_CHARS]


def hash_secret(secret: str) -> str:
    # A fast unsalted hash is the right tool here, unlike for passwords: secrets carry 240 random bits, so
    # there is no dictionary to try, and a slow KDF would only add latency to every authenticated request.
    return hashlib.sha256(secret.encode()).hexdigest()


async def _check_references(
    db: Database, connection: AsyncConnection, workspace_id: str, department_id: str | None, agent_id: str | None
) -> None:
    store = GovernanceStore(db)
    await store.check_department(connection, workspace_id, department_id)
    await store.check_agent(connection, workspace_id, agent_id)


def _new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def _record(row: sa.Row[Any]) -> KeyRecord:
    values = dict(row._mapping)
    values["models"] = tuple(values["models"])
    values["scopes"] = tuple(values["scopes"])
    return KeyRecord(**values)


def _values(record: KeyRecord) -> dict[str, Any]:
    values = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    values["models"] = list(record.models)
    values["scopes"] = list(record.scopes)
    return values


class KeyStore:
    """Keys as the admin API and CLI see them; the request hot path reads an in-memory snapshot instead.

    Usage::

        keys = KeyStore(db)
        record, secret = await keys.create(name="ci", models=["openai/*"])
        snapshot_version = await keys.version()  # read before active(): a change in between reloads again
        snapshot = {k.key_hash: k for k in await keys.active()}
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def database(self) -> Database:
        return self._db

    async def create(
        self,
        *,
        name: str,
        workspace_id: str = "default",
        models: Iterable[str] = (),
        expires_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        department_id: str | None = None,
        agent_id: str | None = None,
        scopes: Iterable[str] = (),
        policy: Mapping[str, Any] | None = None,
    ) -> tuple[KeyRecord, str]:
        """Mint a key; the secret in the result is the only copy there will ever be.

        The workspace gets its row if it has none; a department or agent that the workspace does not have is
        ``Unknown``.
        """
        if isinstance(models, str) or isinstance(scopes, str):
            raise TypeError("models and scopes take lists, not a single string")
        secret = new_secret()
        record = KeyRecord(
            id=_new_key_id(),
            name=name,
            workspace_id=workspace_id,
            prefix=secret_prefix(secret),
            key_hash=hash_secret(secret),
            models=tuple(models),
            created_at=datetime.now(UTC),
            expires_at=None if expires_at is None else as_utc(expires_at),
            metadata=dict(metadata or {}),
            department_id=department_id,
            agent_id=agent_id,
            scopes=tuple(scopes),
            policy=dict(policy or {}),
        )
        async with self._db.engine.begin() as connection:
            await _check_references(self._db, connection, workspace_id, department_id, agent_id)
            await ensure_workspace(self._db, connection, workspace_id)
            await connection.execute(api_keys.insert().values(_values(record)))
            await self._bump_version(connection)
        return record, secret

    async def list(self, *, workspace_id: str | None = None, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if workspace_id is not None:
            query = query.where(api_keys.c.workspace_id == workspace_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_record(row) for row in rows]

    async def get(self, key_id: str, *, workspace_id: str | None = None) -> KeyRecord | None:
        query = sa.select(api_keys).where(api_keys.c.id == key_id)
        if workspace_id is not None:
            query = query.where(api_keys.c.workspace_id == workspace_id)
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _record(row)

    async def update(self, key_id: str, *, workspace_id: str, **changes: Any) -> KeyRecord | None:
        """Change a live key's models, scopes, policy, expiry, department or agent; None when it has no such key.

        A department or agent the workspace does not have is ``Unknown``.
        """
        values: dict[str, Any] = {k: list(v) if k in ("models", "scopes") else v for k, v in changes.items()}
        if isinstance(values.get("expires_at"), datetime):
            values["expires_at"] = as_utc(values["expires_at"])
        where = sa.and_(
            api_keys.c.id == key_id, api_keys.c.workspace_id == workspace_id, api_keys.c.revoked_at.is_(None)
        )
        async with self._db.engine.begin() as connection:
            await _check_references(
                self._db, connection, workspace_id, values.get("department_id"), values.get("agent_id")
            )
            if values:
                result = await connection.execute(api_keys.update().where(where).values(**values))
                if result.rowcount == 0:
                    return None
                await self._bump_version(connection)
            return await self._reload(connection, key_id)

    async def revoke(self, id_or_prefix: str, *, workspace_id: str | None = None) -> KeyRecord | None:
        """Revoke by key id or visible prefix (within ``workspace_id`` when given); revoking twice returns the
        key as first revoked.

        Raises ``ValueError`` when a prefix names more than one key, rather than guess which one to cut off.
        """
        match = sa.or_(api_keys.c.id == id_or_prefix, api_keys.c.prefix == id_or_prefix)
        if workspace_id is not None:
            match = sa.and_(match, api_keys.c.workspace_id == workspace_id)
        async with self._db.engine.begin() as connection:
            found = [_record(row) for row in (await connection.execute(sa.select(api_keys).where(match))).all()]
            exact = [record for record in found if record.id == id_or_prefix]
            if len(found) > 1 and not exact:
                ids = ", ".join(sorted(record.id for record in found))
                raise ValueError(f"prefix {id_or_prefix!r} matches {len(found)} keys ({ids}); revoke by key id")
            if not found:
                return None
            target = exact[0] if exact else found[0]
            if target.revoked_at is not None:
                return target
            now = datetime.now(UTC)
            result = await connection.execute(
                api_keys.update()
                .where(api_keys.c.id == target.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if result.rowcount == 0:  # revoked concurrently: report the winner's timestamp
                return await self._reload(connection, target.id)
            await self._bump_version(connection)
        return dataclasses.replace(target, revoked_at=now)

    async def active(self) -> builtins.list[KeyRecord]:
        """Every key not revoked, in all workspaces: the gateway's snapshot. Expired keys stay in it, because
        expiry is checked per request against the clock, not by reloading."""
        return await self.list()

    async def version(self) -> int:
        """The keys' change counter, 0 before the first change; cheap enough to poll every second."""
        query = sa.select(state_version.c.version).where(state_version.c.name == KEYS_STATE)
        async with self._db.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return 0 if value is None else int(value)

    async def _bump_version(self, connection: AsyncConnection) -> None:
        await bump_version(self._db, connection)

    @staticmethod
    async def _reload(connection: AsyncConnection, key_id: str) -> KeyRecord | None:
        row = (await connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _record(row)
