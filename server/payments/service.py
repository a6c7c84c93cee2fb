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
from finance.payments import Terms, find_asset

from ..config import Settings
from ..governance.crypto import SecretBox
from ..polling import Poller
from ..storage import Database
from .store import PaymentStore

if TYPE_CHECKING:  # the pipeline module imports the services, which import this one
    from finance.payments import Offer, Seller

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
        self._master_key = master_key
        self._seller: Seller | None = None  # built on first use: see ``seller``
        self._facilitator: Any = None
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

    @property
    def facilitator(self) -> Any:
        """The facilitator payments are verified and settled through: the configured URL's, or the local one."""
        return self._built()[1]

    @property
    def seller(self) -> Seller:
        """The seller (offers, verification, settlement through the facilitator)."""
        return self._built()[0]

    def _built(self) -> tuple[Seller, Any]:
        """The seller and its facilitator, built on first use.

        A gateway with no paid endpoint and no local facilitator to serve never builds them, so it never imports
        the payment SDKs (web3, eth-account: ~0.8 s of start-up, ~40 MB of memory).
        """
        if self._seller is None:
            from finance.payments import LocalFacilitator, MppFacilitator, Seller, http_facilitator

            config = self.settings.payments
            if config.facilitator_url:
                self._facilitator = http_facilitator(config.facilitator_url)
            else:
                units = to_nano(config.local_initial_balance_usd) // 1000  # 6-decimal stablecoins
                self._facilitator = LocalFacilitator(networks=list(config.local_networks), initial_balance=units)
            secret = hmac.new(self._master_key.encode(), b"alephant mpp challenges v1", hashlib.sha256).hexdigest()
            self._seller = Seller(
                self._facilitator, MppFacilitator(self._facilitator), realm=self.settings.host, secret_key=secret
            )
        return self._seller, self._facilitator

    async def load(self) -> None:
        """Rebuild the snapshot if the stored version moved (and on the first call)."""
        version = await self.store.version()
        if version == self._version:
            return
        rows: list[dict[str, Any]] = [
            {"id": name, "workspace_id": "default", "price_nano": to_nano(row.price_usd), **row.model_dump()}
            for name, row in self.settings.paid_endpoints.items()
        ]
        rows += await self.store.endpoints()
        if (rows or self.settings.payments.serve_local_facilitator) and not self.seller.x402._initialized:
            await asyncio.to_thread(self.seller.initialize)
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
