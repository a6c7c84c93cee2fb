"""Stored Responses API answers: written once, read by id within the caller's workspace."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.storage.database import Database
from server.storage.schema import stored_responses

__all__ = ["ResponseStore", "StoredResponse"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    id: str
    workspace_id: str
    key_id: str | None
    request_id: str
    created_at: datetime
    response: dict[str, Any]
    items: list[Any]


class ResponseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, record: StoredResponse) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(stored_responses.insert().values(**dataclasses.asdict(record)))

    async def get(self, response_id: str, *, workspace_id: str) -> StoredResponse | None:
        """The stored response, only if it belongs to ``workspace_id`` (another workspace's id reads as absent)."""
        query = sa.select(stored_responses).where(
            stored_responses.c.id == response_id, stored_responses.c.workspace_id == workspace_id
        )
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return StoredResponse(**row) if row is not None else None
