"""The exporters' one entry point: the record stage hands every committed call to ``Telemetry.observe``.

Each exporter is optional and off by default; with all of them off ``Telemetry.active`` is false and the record
stage skips the hook entirely (one attribute read per request). When some are on, ``observe`` builds one
``Finished`` of references and gives it to each: a queue put for the archive and the span exporter (worker
threads), a deque append for each sink (its own task). Nothing here does I/O on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ..call import Call
from ..config import Settings
from ..storage.records import LogRow
from ..storage.spool_slots import claim_spool_slot
from .archive import Archiver, LocalStore, ObjectStore, S3Store
from .event import Finished
from .sinks import Sink, sink_name

if TYPE_CHECKING:
    from .otel import SpanExporter

__all__ = ["Telemetry", "telemetry_lifespan"]

_NS_PER_SECOND = 1_000_000_000


class Telemetry:
    """Usage::

    telemetry = Telemetry(spans=None, archiver=archiver, sinks=[sink])
    if telemetry.active:
        keep = telemetry.stream_cap(call)       # bytes of a streamed answer to keep (0: none)
        telemetry.observe(call, row, body)      # sets ``row.body_ref`` when the bodies will be archived
    """

    def __init__(
        self, *, spans: SpanExporter | None = None, archiver: Archiver | None = None, sinks: Sequence[Sink] = ()
    ) -> None:
        self.spans = spans
        self.archiver = archiver
        self.sinks = tuple(sinks)
        self.active = spans is not None or archiver is not None or bool(self.sinks)

    def stream_cap(self, call: Call) -> int:
        if self.archiver is None or call.principal is None:
            return 0
        return self.archiver.cap(call.principal.workspace_id)

    def observe(self, call: Call, row: LogRow, response_body: bytes) -> None:
        finished = Finished(
            row=row,
            attempts=call.attempts,
            policy_events=call.policy_events,
            started_ns=int(call.created_at.timestamp() * _NS_PER_SECOND),
            headers=call.request.scope["headers"],
            request_body=call.raw,
            response_body=response_body,
        )
        if self.archiver is not None:
            row.body_ref = self.archiver.submit(finished)
        if self.spans is not None:
            self.spans.submit(finished)
        for sink in self.sinks:
            sink.submit(row)

    async def close(self) -> None:
        """Flush everything: sinks deliver or spool, queued bodies are written, spans exported."""
        await asyncio.gather(*(sink.stop() for sink in self.sinks))
        if self.archiver is not None:
            await asyncio.to_thread(self.archiver.close)
        if self.spans is not None:
            await asyncio.to_thread(self.spans.close)


def _archiver(settings: Settings) -> Archiver | None:
    config = settings.archive
    if not config.workspaces:
        return None
    store: ObjectStore
    if config.s3_bucket:
        store = S3Store(config.s3_bucket, endpoint_url=config.s3_endpoint_url, region=config.s3_region)
    else:
        store = LocalStore(config.directory or settings.data_dir / "archive")
    return Archiver(
        store,
        workspaces=set(config.workspaces),
        max_body_bytes=config.max_body_bytes,
        prefix=config.prefix,
        queue_size=config.queue_size,
    )


def traces_endpoint(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL: the setting, else the standard environment variables; ``None`` means off."""
    if configured:
        return configured if configured.rstrip("/").endswith("/v1/traces") else configured.rstrip("/") + "/v1/traces"
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return None


@contextlib.asynccontextmanager
async def telemetry_lifespan(settings: Settings) -> AsyncIterator[Telemetry]:
    """The configured exporters, started; flushed and closed on exit."""
    endpoint = traces_endpoint(settings.otel.endpoint, os.environ)
    if endpoint:  # the OpenTelemetry SDK and exporter load only when spans are exported
        from .otel import SpanExporter
    spans = (
        SpanExporter(
            endpoint,
            service_name=settings.otel.service_name,
            headers={name: value.get_secret_value() for name, value in settings.otel.headers.items()},
            queue_size=settings.otel.queue_size,
        )
        if endpoint
        else None
    )
    async with contextlib.AsyncExitStack() as stack:
        sinks = []
        for config in settings.sinks:
            slot = claim_spool_slot(settings.data_dir / "sinks" / sink_name(config.url, config.name))
            stack.callback(slot.release)
            sinks.append(
                Sink(
                    config.url,
                    directory=slot.path,
                    batch_size=config.batch_size,
                    flush_interval=config.flush_interval,
                    headers={name: value.get_secret_value() for name, value in config.headers.items()},
                    timeout=config.timeout,
                    max_backoff=config.max_backoff,
                )
            )
        telemetry = Telemetry(spans=spans, archiver=_archiver(settings), sinks=sinks)
        for sink in sinks:
            sink.start()
        stack.push_async_callback(telemetry.close)
        yield telemetry
