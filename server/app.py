"""App assembly: settings in, a Starlette app out; services live for the app's lifespan.

``create_app`` is what ``alephant serve`` runs and what tests run under uvicorn.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.registry import Upstreams

from .config import Settings, load_settings
from .keyring import Keyring
from .master_key import resolve_master_key
from .pipeline import build_pipeline
from .routes import http_exception, routes
from .services import Services
from .stages import STAGES, dispatch
from .storage import Database, KeyStore, LogWriter
from .storage.spool_slots import claim_spool_slot

__all__ = ["build_catalog", "create_app", "create_app_from_env"]


def build_catalog(settings: Settings) -> Catalog:
    catalog = Catalog.load(
        env=os.environ,
        custom={
            name: row.model_dump(exclude={"prices"}, exclude_unset=True) for name, row in settings.providers.items()
        },
        aliases=settings.aliases,
    )
    for name, row in settings.providers.items():
        for model, price in row.prices.items():
            catalog.prices[f"{name}/{model}"] = {k: v for k, v in price.model_dump().items() if v is not None}
    return catalog


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = Database(settings.resolved_database_url)
    await database.open()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(database.close)
        await database.migrate()
        keyring = Keyring(
            KeyStore(database),
            master_key=resolve_master_key(settings),
            refresh_interval=settings.key_refresh_interval,
        )
        await keyring.load()
        keyring.start()
        stack.push_async_callback(keyring.stop)
        catalog = build_catalog(settings)
        upstreams = Upstreams(
            connect_timeout=settings.upstream.connect_timeout,
            stream_idle_timeout=settings.upstream.stream_idle_timeout,
            pool_size=settings.upstream.pool_size,
            mock_latency_ms=settings.mock.latency_ms,
            mock_chunk_delay_ms=settings.mock.chunk_delay_ms,
        )
        stack.push_async_callback(upstreams.aclose)
        spool = claim_spool_slot(settings.data_dir / "spool")
        stack.callback(spool.release)
        log_writer = LogWriter(
            database,
            spool_dir=spool.path,
            max_queue=settings.log.queue_size,
            batch_size=settings.log.batch_size,
            flush_interval=settings.log.flush_interval,
        )
        log_writer.start()
        stack.push_async_callback(log_writer.stop)  # flushed before the database closes
        services = Services(
            settings=settings,
            database=database,
            catalog=catalog,
            prices=PriceBook(catalog.prices),
            keyring=keyring,
            upstreams=upstreams,
            log_writer=log_writer,
        )
        app.state.services = services
        app.state.pipeline = build_pipeline(STAGES, dispatch, services)
        yield


def create_app(settings: Settings) -> Starlette:
    app = Starlette(
        routes=routes,
        lifespan=_lifespan,
        exception_handlers={HTTPException: http_exception},
    )
    app.state.settings = settings
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and multi-worker serving: settings from the file and environment."""
    return create_app(load_settings())
