"""The snapshot counter: one ``state_version`` row that every change to keys or governance entities moves.

Gateways poll this one row every ``key_refresh_interval`` and reload their in-memory snapshot (keys, policies,
provider keys) when it moved, so a change made by the CLI, the admin API or another replica takes effect
everywhere within that interval without a query per request.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.database import Database
from server.storage.schema import state_version

__all__ = ["KEYS_STATE", "bump_version"]

KEYS_STATE = "keys"  # the row's name predates governance; keys and entities share it


async def bump_version(db: Database, connection: AsyncConnection) -> None:
    """Move the counter in the caller's transaction, so the change and its announcement commit together."""
    upsert = db.insert(state_version).values(name=KEYS_STATE, version=1)
    await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=[state_version.c.name], set_={"version": state_version.c.version + 1}
        )
    )
