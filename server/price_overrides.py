"""Workspace price overrides as an in-memory snapshot inside the ``PriceBook`` (no query per request).

Like the key snapshot (``server.keyring``): a background task polls ``state_version('prices')`` every
``key_refresh_interval`` seconds and, when it moved, reads every override and swaps the book's snapshot in
one assignment. An override set through the admin API prices calls in every gateway within that interval.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from finance.pricing import Price, PriceBook

from .polling import Poller
from .storage.prices import PriceOverride, PriceStore

__all__ = ["PriceOverrides", "override_price", "override_source"]

_log = logging.getLogger("alephant.prices")


def override_source(override: PriceOverride) -> str:
    """What a cost priced by this override records as its price source: whose price, which version."""
    return f"override:{override.workspace_id}:v{override.version}"


def override_price(override: PriceOverride) -> Price:
    return Price(
        input=override.input_mtok_nano,
        output=override.output_mtok_nano,
        cache_read=override.cache_read_mtok_nano,
        cache_write=override.cache_write_mtok_nano,
        reasoning=override.reasoning_mtok_nano,
        request=override.request_nano,
        source=override_source(override),
    )


class PriceOverrides:
    def __init__(self, store: PriceStore, book: PriceBook, *, refresh_interval: float) -> None:
        self._store = store
        self._book = book
        self._interval = refresh_interval
        self._version = -1
        self._poller = Poller(
            self.load,
            interval=refresh_interval,
            name="alephant-prices",
            failure="price snapshot refresh failed, keeping the previous one",
        )

    async def load(self) -> None:
        """Reload the snapshot if the stored version moved (and on the first call)."""
        version = await self._store.version()
        if version == self._version:
            return
        snapshot: defaultdict[str, dict[tuple[str, str], Price]] = defaultdict(dict)
        for override in await self._store.list():
            provider, _, model = override.model.partition("/")
            snapshot[override.workspace_id][(provider, model)] = override_price(override)
        self._book.set_overrides(dict(snapshot))
        self._version = version

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
