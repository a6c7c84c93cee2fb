"""Store outcomes as admin API errors: an unknown entity is a 404, a duplicate a 409, a bad reference a 400."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..errors import GatewayError, InvalidRequest, NotFound
from ..storage.governance import Conflict, Unknown

__all__ = ["Duplicate", "store_errors"]


class Duplicate(GatewayError):
    status = 409
    code = "conflict"
    type = "invalid_request_error"


@contextlib.contextmanager
def store_errors(*, reference: str | None = None) -> Iterator[None]:
    """``reference`` names the body field whose unknown target is the caller's mistake (400, not 404)."""
    try:
        yield
    except Conflict as exc:
        raise Duplicate(f"{str(exc).capitalize()}. Choose another id or name.") from None
    except Unknown as exc:
        message = f"{str(exc).capitalize()}. Create it first, or check the id."
        if reference is not None:
            raise InvalidRequest(message, param=reference) from None
        raise NotFound(message) from None
