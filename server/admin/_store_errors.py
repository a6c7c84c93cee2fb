"""Store outcomes as admin API errors: an unknown entity is a 404, a duplicate or a still-referenced entity a 409,
a bad reference a 400."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..errors import Conflict, InvalidRequest, NotFound
from ..storage import governance as store

__all__ = ["store_errors"]


@contextlib.contextmanager
def store_errors(*, reference: str | None = None) -> Iterator[None]:
    """``reference`` names the body field whose unknown target is the caller's mistake (400, not 404)."""
    try:
        yield
    except store.Conflict as exc:
        raise Conflict(f"{str(exc).capitalize()}. Choose another id or name.") from None
    except store.InUse as exc:
        raise Conflict(f"{str(exc).capitalize()}.") from None
    except store.Unknown as exc:
        message = f"{str(exc).capitalize()}. Create it first, or check the id."
        if reference is not None:
            raise InvalidRequest(message, param=reference) from None
        raise NotFound(message) from None
