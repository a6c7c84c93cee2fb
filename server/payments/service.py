"""The payments service of one gateway process: the seller (facilitator, offers) and the wallets' sealing key.

Paid endpoints are an in-memory snapshot (``alephant.yaml``'s ``paid_endpoints`` plus the stored ones). Like
the key snapshot (``server.keyring``), a background task polls ``state_version('payments')`` every
``key_refresh_interval`` and rebuilds the snapshot only when it moved (the admin API also reloads at once after
its own change); routing a request to a paid endpoint reads only the snapshot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

from finance.money import to_nano
from finance.payments import LocalFacilitator, MppFacilitator, Offer, Seller, Terms, find_asset, http_facilitator

from ..config import Settings
from ..governance.crypto import SecretBox
from ..polling import Poller
from ..storage import Database
from .store import PaymentStore

if TYPE_CHECKING:  # the pipeline module imports the services, which import this one
    from ..pipeline import Handler

__all__ = ["PaidEndpoint", "Payments"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class PaidEndpoint:
    id: str
    workspace_id: str
    path: str
    target: str
    offer: Offer


class Payments:
    def __init__(self, settings: Settings, database: Database, master_key: str) -> None:
        self.settings = settings
        self.store = PaymentStore(database)
        self.box = SecretBox(master_key)
        config = settings.payments
        if config.facilitator_url:
            facilitator: Any = http_facilitator(config.facilitator_url)
        else:
            units = to_nano(config.local_initial_balance_usd) // 1000  # 6-decimal stablecoins
            facilitator = LocalFacilitator(networks=list(config.local_networks), initial_balance=units)
        self.facilitator = facilitator
        secret = hmac.new(master_key.encode(), b"alephant mpp challenges v1", hashlib.sha256).hexdigest()
        self.seller = Seller(facilitator, MppFacilitator(facilitator), realm=settings.host, secret_key=secret)
        self.endpoints: dict[str, PaidEndpoint] = {}
        self._version = -1
        self._poller = Poller(
            self.load,
            interval=settings.key_refresh_interval,
            name="alephant-paid-endpoints",
            failure="paid endpoints refresh failed, keeping the previous ones",
        )
        # The pipeline model targets run through (``model_target``), built on first use: it needs the services.
        self.model_pipeline: Handler | None = None

    async def load(self) -> None:
        """Rebuild the snapshot if the stored version moved (and on the first call)."""
        if not self.seller.x402._initialized:
            await asyncio.to_thread(self.seller.initialize)
        version = await self.store.version()
        if version == self._version:
            return
        rows: list[dict[str, Any]] = [
            {"id": name, "workspace_id": "default", "price_nano": to_nano(row.price_usd), **row.model_dump()}
            for name, row in self.settings.paid_endpoints.items()
        ]
        rows += await self.store.endpoints()
        built: dict[str, PaidEndpoint] = {}
        for row in rows:
            terms = Terms(
                asset=find_asset(row["network"], row["asset"]), pay_to=row["pay_to"], amount_nano=row["price_nano"]
            )
            offer = self.seller.offer(terms, description=row.get("description") or "")
            built[row["path"]] = PaidEndpoint(row["id"], row["workspace_id"], row["path"], row["target"], offer)
        self.endpoints = built
        self._version = version

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
