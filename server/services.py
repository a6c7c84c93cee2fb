"""The long-lived services of one gateway process, built in the app's lifespan and shared by every stage.

There is no module-level state: routes reach these through ``request.app.state.services``, stages through
their constructor.
"""

from __future__ import annotations

import dataclasses

from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.registry import Upstreams

from .config import Settings
from .keyring import Keyring
from .storage import Database, LogWriter

__all__ = ["Services"]


@dataclasses.dataclass(slots=True, kw_only=True)
class Services:
    settings: Settings
    database: Database
    catalog: Catalog
    prices: PriceBook
    keyring: Keyring
    upstreams: Upstreams
    log_writer: LogWriter
