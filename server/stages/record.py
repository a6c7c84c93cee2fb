"""The outermost stage: price the call, stamp the response headers, and log exactly one row per request.

Non-streamed calls are committed when the inner stages return or raise; streamed calls when their stream ends,
fails, or the client disconnects (``client_disconnected``, with the tokens relayed so far). Committing is
synchronous and cheap (a price lookup in memory and a non-blocking queue put) so that it also runs safely
inside a cancelled stream. Routing headers (``alephant-attempts``, ``alephant-fallback``) and the per-attempt
list on the row come from ``Call.attempts``/``Call.fallbacks``, which the attempt loop fills. A row that cannot
be queued or spooled is logged and dropped: the log never fails a request. When an exporter is on (spans, body
archive, sinks: ``server.telemetry``), the committed call is handed to it the same way, by queue puts; the
Prometheus counters (``server.metrics``) are updated in memory. A stream's inner stages are closed before it is
priced, because a disconnected relay learns its usage only when it closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson

from finance.money import format_usd

from ..call import Call, Reply
from ..errors import GatewayError, InternalError
from ..pipeline import Handler
from ..services import Services
from ..storage import LogRow

__all__ = ["RecordStage"]

_log = logging.getLogger("alephant.gateway")


class RecordStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.prices = services.prices
        self.log_writer = services.log_writer
        self.metrics = services.metrics
        self.telemetry = services.telemetry

    async def __call__(self, call: Call) -> Reply:
        try:
            reply = await self.next(call)
        except GatewayError as exc:
            call.status, call.error = "error", exc
            exc.headers.update(_routing_headers(call))
            self._commit(call, exc.status)
            raise
        except asyncio.CancelledError:
            call.status = "client_disconnected"
            self._commit(call, 499)
            raise
        except Exception:
            _log.exception("internal error on request %s", call.request_id)
            call.status, call.error = (
                "error",
                InternalError(f"Internal error. Quote request id {call.request_id} when reporting it."),
            )
            self._commit(call, 500)
            raise call.error from None
        if call.target is not None:
            reply.headers["alephant-provider"] = call.target.provider.id
            reply.headers["alephant-model"] = call.target.qualified
        reply.headers.update(_routing_headers(call))
        if reply.stream is None:
            call.first_byte = time.perf_counter()
            self._price(call)
            assert call.cost is not None
            reply.headers["alephant-cost-usd"] = format_usd(call.cost.nano)
            self._commit(call, reply.status, reply.body)
            return reply
        reply.stream = self._watch(call, reply.stream, reply.status)
        return reply

    async def _watch(self, call: Call, stream: AsyncIterator[bytes], status: int) -> AsyncIterator[bytes]:
        keep = self.telemetry.stream_cap(call) if self.telemetry.active else 0  # bytes the body archive wants
        relayed = bytearray()
        try:
            async for chunk in stream:
                if call.first_byte is None:
                    call.first_byte = time.perf_counter()
                if len(relayed) < keep:
                    relayed += chunk[: keep - len(relayed)]
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            call.status = "client_disconnected"
            raise
        finally:
            try:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()  # the inner stages' ends run first: the relay sets the usage relayed so far
            finally:
                self._price(call)
                self._commit(call, status, bytes(relayed))

    def _price(self, call: Call) -> None:
        if call.cost is None and call.target is not None:
            workspace_id = call.principal.workspace_id if call.principal is not None else None
            call.cost = self.prices.cost(call.target.provider.id, call.target.model, call.usage, workspace_id)

    def _commit(self, call: Call, http_status: int, body: bytes = b"") -> None:
        end = time.perf_counter()
        target, principal, context, usage, error = (
            call.target,
            call.principal,
            call.context,
            call.usage,
            call.error,
        )
        row = LogRow(
            request_id=call.request_id,
            created_at=call.created_at,
            endpoint="passthrough" if call.passthrough else call.endpoint,
            key_id=principal.key_id if principal else None,
            workspace_id=principal.workspace_id if principal else None,
            agent_id=context.agent_id,
            run_id=context.run_id,
            session_id=context.session_id,
            properties=context.properties,
            model=call.model,
            provider=target.provider.id if target else None,
            upstream_model=target.model if target else None,
            stream=call.stream,
            status=call.status,
            http_status=http_status,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_ms=call.elapsed_ms(end),
            ttfb_ms=call.elapsed_ms(call.first_byte) if call.first_byte is not None else None,
            cost_nano=call.cost.nano if call.cost else 0,
            price_source=call.cost.source if call.cost else None,
            attempts=len(call.attempts),
            attempt_log=orjson.dumps([a.compact() for a in call.attempts]).decode() if call.attempts else None,
            department_id=principal.department_id if principal else None,
            policy_events=orjson.dumps([e.compact() for e in call.policy_events]).decode()
            if call.policy_events
            else None,
        )
        if self.telemetry.active:  # spans, body archive, sinks; sets ``row.body_ref`` before the row is queued
            try:
                self.telemetry.observe(call, row, body)
            except Exception:  # fail open, as the log does
                _log.exception("request %s: telemetry could not take the call", call.request_id)
        try:
            self.log_writer.submit(row)
        except Exception:  # fail open: a log backend failure (a full disk under the spool) never fails a request
            _log.exception("request %s: its log row could not be queued or spooled", call.request_id)
        try:
            self.metrics.observe(row, call.attempts, error)
        except Exception:  # fail open: metrics never fail a request either
            _log.exception("request %s: its metrics could not be recorded", call.request_id)


def _routing_headers(call: Call) -> dict[str, str]:
    """How many upstream attempts the call took and which fallbacks it went through (``class:from->to``)."""
    headers: dict[str, str] = {}
    if call.attempts:
        headers["alephant-attempts"] = str(len(call.attempts))
    if call.fallbacks:
        headers["alephant-fallback"] = ", ".join(call.fallbacks)
    return headers
