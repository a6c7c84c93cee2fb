"""What the record stage hands the exporters when a call is committed: references, not copies.

Built once per call only when some exporter is on; every field is a reference to something the call already
holds, so building it is O(1). The exporters' threads and tasks read it later, after the call is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..call import PolicyEvent
from ..routing.types import AttemptRecord
from ..storage.records import LogRow

__all__ = ["Finished"]

RawHeaders = Sequence[tuple[bytes, bytes]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    row: LogRow  # the request-log row, as queued (``body_ref`` set when the bodies are being archived)
    attempts: Sequence[AttemptRecord]
    policy_events: Sequence[PolicyEvent]
    started_ns: int  # wall clock, nanoseconds since the epoch
    headers: RawHeaders  # the client's request headers (ASGI form): redacted before anything stores them
    request_body: bytes
    response_body: bytes  # non-streamed: the answer; streamed: the bytes relayed, up to the archive's cap + 1
