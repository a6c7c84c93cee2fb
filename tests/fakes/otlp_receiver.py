"""An OpenTelemetry collector's OTLP/HTTP traces endpoint: decodes ``ExportTraceServiceRequest`` protobufs.

It keeps each export's raw bytes too, so a test can search everything the gateway sent (secrets must not be
there), and flattens spans into ``ReceivedSpan`` values with plain attribute dictionaries.
"""

from __future__ import annotations

import dataclasses
import gzip
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._server import FakeServer

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclasses.dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(values: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(values)
    return {pair.key: _value(pair.value) for pair in pairs}


class OtlpReceiver(FakeServer[bytes]):
    """``POST /v1/traces``; ``spans`` decodes every export received so far."""

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        ExportTraceServiceRequest.FromString(body)  # refuse what does not decode, as a collector would
        with self._lock:
            self._requests.append(body)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    @property
    def spans(self) -> list[ReceivedSpan]:
        found = []
        for body in self.requests:
            export = ExportTraceServiceRequest.FromString(body)
            for resource_spans in export.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            ReceivedSpan(
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                kind=span.kind,
                                start_ns=span.start_time_unix_nano,
                                end_ns=span.end_time_unix_nano,
                                status_code=span.status.code,
                                attributes=_attributes(span.attributes),
                                events=[(event.name, _attributes(event.attributes)) for event in span.events],
                                resource=resource,
                            )
                        )
        return found
