"""Transport failures, raised by transports and mapped to gateway errors in one place (the dispatch stage).

TransportError        the connection failed: refused, reset, DNS, closed mid-answer
└── TransportTimeout  no answer (or no next chunk) within the configured time
"""

from __future__ import annotations

__all__ = ["TransportError", "TransportTimeout"]


class TransportError(Exception):
    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class TransportTimeout(TransportError):
    pass
