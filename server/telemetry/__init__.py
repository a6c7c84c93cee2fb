"""Telemetry beyond the request log: OpenTelemetry spans, body archival and webhook sinks (issue 7).

``hub.Telemetry`` is what the record stage calls; ``otel``, ``archive`` and ``sinks`` are the exporters, each
taking its work off the request path (a worker thread or a task); ``redact`` keeps credentials out of all three.
"""

from .hub import Telemetry, telemetry_lifespan

__all__ = ["Telemetry", "telemetry_lifespan"]
