"""The request pipeline: named stages, each wrapping the next, folded once when the app is built.

Reading ``STAGES`` tells the lifecycle of every governed request (HTTP routes and MCP tools alike):

    record          times the call, prices it, writes its log row — success, failure or disconnect
    agent_context   request id, Agent/Run/Session ids and properties from headers (validated)
    authenticate    virtual key (or master key) from an in-memory snapshot
    ingress         reads the body; the caller's dialect makes it canonical (and the answer its own again)
    resolve         model name -> (provider, upstream model) through aliases and the catalog, or a router group
    policy          the key's model allowance
    limits          budgets reserved, rate windows counted, concurrency leased; the actual cost committed after
    route           the deployment plan: router strategy, fallbacks, attempt cap and deadline
    dispatch        adapter, transport and the attempt loop (retries, fallback); the terminal handler

``record`` is outermost so that every request, including rejected ones, gets exactly one row; the agent
context runs before authentication so that a rejected request still echoes and logs its ids. Limits and
cache stages slot in between ``policy`` and ``route`` as their issues land. ``PASSTHROUGH_STAGES`` serve
``/{provider}/*`` (the provider's own API, relayed).

Each stage is a class in the style of ASGI middleware: ``Stage(next, services)`` then ``await stage(call)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from .call import Call, Reply
from .services import Services

__all__ = ["Handler", "StageFactory", "build_pipeline"]

Handler = Callable[[Call], Awaitable[Reply]]


class StageFactory(Protocol):
    def __call__(self, next: Handler, services: Services) -> Handler: ...


def build_pipeline(
    stages: Sequence[StageFactory], terminal: Callable[[Services], Handler], services: Services
) -> Handler:
    """Fold ``stages`` around ``terminal``: the first stage listed is the outermost."""
    handler = terminal(services)
    for stage in reversed(stages):
        handler = stage(handler, services)
    return handler
