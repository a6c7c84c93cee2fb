"""App assembly: settings in, a Starlette app out; services live for the app's lifespan.

``create_app`` is what ``alephant serve`` runs and what tests run under uvicorn. ``services_lifespan`` builds
the same services for a process that is not the HTTP gateway (``alephant mcp`` over stdio).

Mounts: other packages add HTTP surfaces (the MCP server in ``tools/``) without ``server`` importing them.
Each entry point in the ``alephant.mounts`` group names a callable ``mount(settings) -> Mounted``::

    [project.entry-points."alephant.mounts"]
    mcp = "tools.mount:mount"

``Mounted.routes`` are appended after the gateway's own routes (so they cannot shadow them); its optional
``lifespan(app)`` is entered inside the gateway's lifespan once ``app.state.services`` and
``app.state.pipeline`` are set, and exited before those services close. A mount that fails to load stops
start-up: a gateway silently missing a surface it was installed with is worse than one that does not start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import random
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.metadata import entry_points

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.registry import Upstreams

from .config import Settings, load_settings
from .hot_routes import GatewayApp
from .keyring import Keyring
from .ledger import Ledger
from .limits import build_limiter
from .limits.spent import spend_listener
from .master_key import resolve_master_key
from .metrics import Metrics
from .payments import Payments
from .pipeline import build_pipeline
from .price_overrides import PriceOverrides
from .retention import Retention
from .routes import HOT_ROUTES, http_exception, routes
from .routing.health import Health
from .routing.passthrough import passthrough
from .routing.probes import Prober
from .routing.routers import Routers
from .routing.store import RouterStore, RouterSync
from .runs import Runs
from .services import Services
from .stages import PASSTHROUGH_STAGES, STAGES, dispatch
from .storage import Database, KeyStore, LogWriter, ResponseStore
from .storage.ledger import LedgerStore
from .storage.log_search import LogSearch
from .storage.prices import PriceStore
from .storage.spool_slots import claim_spool_slot
from .stored_responses import StoredResponses
from .telemetry import telemetry_lifespan

__all__ = [
    "MOUNTS_GROUP",
    "Mounted",
    "build_catalog",
    "create_app",
    "create_app_from_env",
    "load_mounts",
    "services_lifespan",
]

MOUNTS_GROUP = "alephant.mounts"
_GC_YOUNG_THRESHOLD = 7_000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Mounted:
    """What one ``alephant.mounts`` entry adds to the gateway: routes, and work to run for the app's lifetime.

    Example (a package's ``mount.py``)::

        def mount(settings: Settings) -> Mounted:
            return Mounted(routes=[Route("/hello", hello)], lifespan=my_lifespan)
    """

    routes: Sequence[BaseRoute]
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None = None


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
async def services_lifespan(settings: Settings) -> AsyncIterator[Services]:
    """The gateway's long-lived services, opened in order and closed in reverse (logs flushed first)."""
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
        limiter = build_limiter(settings, database)
        await limiter.snapshot.load()
        limiter.snapshot.start()
        stack.push_async_callback(limiter.snapshot.stop)
        limiter.start()
        stack.push_async_callback(limiter.stop)
        stored = StoredResponses(ResponseStore(database))
        stored.start()
        stack.push_async_callback(stored.stop)
        prices = PriceBook(catalog.prices)
        price_overrides = PriceOverrides(PriceStore(database), prices, refresh_interval=settings.key_refresh_interval)
        await price_overrides.load()
        price_overrides.start()
        stack.push_async_callback(price_overrides.stop)
        rng = random.Random()  # the routing strategies' and the backoff's draws
        routers = Routers.build(settings, catalog, prices, os.environ, rng)
        router_sync = RouterSync(
            RouterStore(database),
            routers,
            catalog=catalog,
            prices=prices,
            env=os.environ,
            rng=rng,
            interval=settings.key_refresh_interval,
        )
        await router_sync.load()
        router_sync.start()
        stack.push_async_callback(router_sync.stop)
        payments = Payments(settings, database, resolve_master_key(settings))
        await payments.load()
        payments.start()
        stack.push_async_callback(payments.stop)
        telemetry = await stack.enter_async_context(telemetry_lifespan(settings))  # spans, archive, sinks
        services = Services(
            settings=settings,
            database=database,
            catalog=catalog,
            prices=prices,
            keyring=keyring,
            upstreams=upstreams,
            log_writer=log_writer,
            runs=Runs(database, before_read=log_writer.sync),
            limiter=limiter,
            ledger=Ledger(LedgerStore(database), on_spend=spend_listener(limiter), before_read=log_writer.sync),
            metrics=Metrics(known_model=lambda provider, name: catalog.model_info(provider, name) is not None),
            stored_responses=stored,
            payments=payments,
            telemetry=telemetry,
            routers=routers,
            router_sync=router_sync,
            health=Health(settings.health),
            rng=rng,
        )
        if settings.health.probe_interval is not None:  # optional active probes of router deployments
            prober = Prober(
                routers=services.routers,
                health=services.health,
                upstreams=upstreams,
                interval=settings.health.probe_interval,
                timeout=settings.health.probe_timeout,
            )
            prober.start()
            stack.push_async_callback(prober.stop)
        if settings.log.retention_days is not None:  # background deletes of old log rows, off the request path
            retention = Retention(
                LogSearch(database), days=settings.log.retention_days, interval=settings.log.retention_interval
            )
            retention.start()
            stack.push_async_callback(retention.stop)
        yield services


def load_mounts(settings: Settings) -> list[Mounted]:
    """Every installed ``alephant.mounts`` entry, called with the settings, in entry-point name order."""
    mounted = []
    for entry in sorted(entry_points(group=MOUNTS_GROUP), key=lambda e: e.name):
        made = entry.load()(settings)
        assert isinstance(made, Mounted), f"{entry.value} returned {type(made).__name__}, not Mounted"
        mounted.append(made)
    return mounted


def create_app(settings: Settings) -> Starlette:
    mounts = load_mounts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            services = await stack.enter_async_context(services_lifespan(settings))
            app.state.services = services
            app.state.pipeline = build_pipeline(STAGES, dispatch, services)
            app.state.passthrough = build_pipeline(PASSTHROUGH_STAGES, passthrough, services)
            for mount in mounts:
                if mount.lifespan is not None:
                    await stack.enter_async_context(mount.lifespan(app))
            # The catalog and the price snapshot are ~10^6 long-lived objects; left in the collected
            # generations, every full collection walked them (~130 ms pauses under load). Freeze them.
            gc.collect()
            gc.freeze()
            # A request allocates a few dozen container objects, nearly all freed by reference counting. At the
            # default threshold (700) the young generation was collected ~250 times a second under load (~5% of
            # the loop's time); at 7,000 a handful of times, with no change in RSS (bench/RESULTS.md).
            gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            yield

    app = GatewayApp(
        hot=HOT_ROUTES,
        routes=[*routes, *(route for mount in mounts for route in mount.routes)],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},
    )
    app.state.settings = settings
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and multi-worker serving: settings from the file and environment."""
    return create_app(load_settings())
