"""OpenTelemetry traces over OTLP/HTTP: one server span per request, one client span per upstream attempt.

Spans follow the GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.provider.name`` and the older
``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens``) plus ``alephant.*`` attributes (request, workspace, key id, agent, run, session, cost) and
one ``alephant.policy`` span event per policy decision. A client's W3C ``traceparent`` makes the request span
a child of the client's span.

The spans are built from the committed call in a worker thread, with the call's own start and end times, and
handed to the SDK's batch span processor, which exports them in the background. Attempts record durations, not
start times, so their spans are laid end to end from the request's start. No header, body or key is exported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from finance.money import format_usd

from ._worker import Worker
from .event import Finished

__all__ = ["SpanExporter"]

_MS = 1_000_000  # nanoseconds
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class SpanExporter:
    """Usage::

    spans = SpanExporter("http://127.0.0.1:4318/v1/traces", service_name="alephant")
    spans.submit(finished)   # O(1): the span is built and exported in the background
    spans.close()            # in a thread, at shutdown: builds what is queued and exports every span
    """

    def __init__(
        self, endpoint: str, *, service_name: str, headers: Mapping[str, str] | None = None, queue_size: int = 10_000
    ) -> None:
        self.endpoint = endpoint
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service_name, "service.instance.id": str(os.getpid())})
        )
        exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}))
        self._provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=max(queue_size, 512)))
        self._tracer = self._provider.get_tracer("alephant.gateway")
        self._worker: Worker[Finished] = Worker("otel", handle=self.emit, size=queue_size)

    def submit(self, finished: Finished) -> None:
        self._worker.put(finished)

    def close(self) -> None:
        self._worker.close()
        self._provider.shutdown()  # flushes the batch processor

    def emit(self, finished: Finished) -> None:
        """Build the request span and its attempts' spans and end them (the batch processor exports them)."""
        row = finished.row
        start = finished.started_ns
        end = start + int(row.latency_ms * _MS)
        operation = "embeddings" if row.endpoint == "embeddings" else "chat"
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": operation,
            "alephant.request_id": row.request_id,
            "alephant.endpoint": row.endpoint,
            "alephant.status": row.status,
            "alephant.stream": row.stream,
            "alephant.attempts": row.attempts,
            "alephant.cost_nano_usd": row.cost_nano,
            "alephant.cost_usd": format_usd(row.cost_nano),
            "http.response.status_code": row.http_status,
            "gen_ai.usage.input_tokens": row.prompt_tokens,
            "gen_ai.usage.output_tokens": row.completion_tokens,
        }
        optional = {
            "gen_ai.provider.name": row.provider,
            "gen_ai.system": row.provider,
            "gen_ai.request.model": row.model,
            "gen_ai.response.model": row.upstream_model,
            "alephant.workspace_id": row.workspace_id,
            "alephant.key_id": row.key_id,
            "alephant.department_id": row.department_id,
            "alephant.agent_id": row.agent_id,
            "alephant.run_id": row.run_id,
            "alephant.session_id": row.session_id,
            "alephant.price_source": row.price_source,
            "alephant.body_ref": row.body_ref,
            "error.type": row.error_code,
        }
        attributes.update({name: value for name, value in optional.items() if value is not None})
        if row.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = row.cached_tokens
        if row.reasoning_tokens:
            attributes["alephant.usage.reasoning_tokens"] = row.reasoning_tokens
        if row.ttfb_ms is not None:
            attributes["alephant.ttfb_ms"] = row.ttfb_ms
        name = f"{operation} {row.model}" if row.model else operation
        span = self._tracer.start_span(
            name, context=_parent(finished), kind=SpanKind.SERVER, attributes=attributes, start_time=start
        )
        for event in finished.policy_events:
            span.add_event(
                "alephant.policy",
                {
                    "alephant.policy.decision": event.decision,
                    "alephant.policy.rule": event.rule,
                    "alephant.policy.reason": event.reason,
                },
                timestamp=start,
            )
        if row.status == "error":
            span.set_status(Status(StatusCode.ERROR, row.error_message or row.error_code))
        context = set_span_in_context(span)
        attempt_start = start
        for number, attempt in enumerate(finished.attempts, 1):
            attempt_end = min(attempt_start + int(attempt.latency_ms * _MS), end)
            child = self._tracer.start_span(
                f"{operation} {attempt.model}",
                context=context,
                kind=SpanKind.CLIENT,
                start_time=attempt_start,
                attributes={
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": attempt.provider,
                    "gen_ai.system": attempt.provider,
                    "gen_ai.request.model": attempt.model,
                    "alephant.deployment": attempt.deployment,
                    "alephant.attempt": number,
                    **({"http.response.status_code": attempt.status} if attempt.status is not None else {}),
                    **({"error.type": attempt.error} if attempt.error else {}),
                    **({"alephant.failure_class": attempt.failure} if attempt.failure else {}),
                },
            )
            if attempt.error:
                child.set_status(Status(StatusCode.ERROR, attempt.error))
            child.end(end_time=attempt_end)
            attempt_start = attempt_end
        span.end(end_time=end)


def _parent(finished: Finished) -> Context | None:
    carrier = {name.decode(): value.decode("latin-1") for name, value in finished.headers if name in _TRACE_HEADERS}
    return _PROPAGATOR.extract(carrier) if carrier else None
