"""The payments tables: paid endpoints, agents' wallets, and the payment rows whose unique claim is the lock.

Every change to paid endpoints bumps ``state_version('payments')`` in its own transaction, so each gateway
(which polls that one row) rebuilds its endpoint snapshot only when something moved, whoever changed it: the
admin API, the CLI or another replica.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage import Database
from ..storage.schema import paid_endpoints, payments, state_version, wallets

__all__ = ["PAYMENTS_STATE", "EndpointExists", "PaymentStore", "WalletExists"]

PAYMENTS_STATE = "payments"  # the state_version row bumped with every paid-endpoint change


class EndpointExists(Exception):
    """Another paid endpoint already answers this path."""


class WalletExists(Exception):
    """The agent already has a wallet in this workspace."""


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class PaymentStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def claim(self, **row: Any) -> str | None:
        """Insert a payment row in state ``claimed``; ``None`` when its claim exists (the payment was used)."""
        payment_id = _id("pay")
        values = {"id": payment_id, "status": "claimed", "created_at": datetime.now(UTC), **row}
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(sa.insert(payments).values(**values))
        except IntegrityError:
            return None
        return payment_id

    async def finish(self, payment_id: str, *, status: str, reference: str | None = None) -> None:
        async with self.database.engine.begin() as connection:
            await connection.execute(
                sa.update(payments)
                .where(payments.c.id == payment_id)
                .values(
                    status=status, reference=reference, settled_at=datetime.now(UTC) if status == "settled" else None
                )
            )

    async def release(self, payment_id: str) -> None:
        """Forget a claim whose payment was not spent (the handler failed before settlement): it may be retried."""
        async with self.database.engine.begin() as connection:
            await connection.execute(sa.delete(payments).where(payments.c.id == payment_id))

    async def list_payments(self, workspace_id: str) -> list[dict[str, Any]]:
        async with self.database.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(payments).where(payments.c.workspace_id == workspace_id).order_by(payments.c.created_at)
            )
            return [{str(k): v for k, v in row._mapping.items()} for row in rows]

    async def endpoints(self) -> list[dict[str, Any]]:
        async with self.database.engine.connect() as connection:
            return [
                {str(k): v for k, v in row._mapping.items()}
                for row in await connection.execute(sa.select(paid_endpoints))
            ]

    async def version(self) -> int:
        query = sa.select(state_version.c.version).where(state_version.c.name == PAYMENTS_STATE)
        async with self.database.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return 0 if value is None else int(value)

    async def create_endpoint(self, **row: Any) -> dict[str, Any]:
        """Store a paid endpoint; ``EndpointExists`` when its path is taken."""
        values = {"id": _id("pe"), "created_at": datetime.now(UTC), **row}
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(sa.insert(paid_endpoints).values(**values))
                await self._bump(connection)
        except IntegrityError:
            raise EndpointExists(row["path"]) from None
        return values

    async def delete_endpoint(self, workspace_id: str, endpoint_id: str) -> bool:
        async with self.database.engine.begin() as connection:
            result = await connection.execute(
                sa.delete(paid_endpoints).where(
                    paid_endpoints.c.id == endpoint_id, paid_endpoints.c.workspace_id == workspace_id
                )
            )
            if result.rowcount:
                await self._bump(connection)
        return bool(result.rowcount)

    async def _bump(self, connection: AsyncConnection) -> None:
        """Move the counter in the change's transaction, so the change and its announcement commit together."""
        upsert = self.database.insert(state_version).values(name=PAYMENTS_STATE, version=1)
        await connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[state_version.c.name], set_={"version": state_version.c.version + 1}
            )
        )

    async def create_wallet(self, **row: Any) -> dict[str, Any]:
        """Store a sealed wallet; ``WalletExists`` when the agent has one."""
        values = {"created_at": datetime.now(UTC), **row}
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(sa.insert(wallets).values(**values))
        except IntegrityError:
            raise WalletExists(row["agent_id"]) from None
        return values

    async def wallet(self, workspace_id: str, agent_id: str) -> dict[str, Any] | None:
        async with self.database.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(wallets).where(wallets.c.workspace_id == workspace_id, wallets.c.agent_id == agent_id)
                )
            ).first()
        return {str(k): v for k, v in row._mapping.items()} if row is not None else None

    async def wallets(self, workspace_id: str) -> list[dict[str, Any]]:
        async with self.database.engine.connect() as connection:
            rows = await connection.execute(sa.select(wallets).where(wallets.c.workspace_id == workspace_id))
            return [{str(k): v for k, v in row._mapping.items()} for row in rows]
