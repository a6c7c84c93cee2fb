"""Model policy: allow/deny globs, a provider allowlist and a max-token cap, layered workspace → key → agent.

A layer is a ``ModelPolicy`` with a stable rule id prefix (``workspace:acme``, ``key:key_12``,
``agent:acme/support-bot``). A model, named ``provider/model``, is allowed when every layer allows it:

1. a deny glob of any layer that matches refuses it (deny wins over allow);
2. a layer with allow globs refuses a model none of them matches (no globs: the layer allows every model);
3. a layer with a provider allowlist refuses a model of another provider.

The max-token cap of the call is the smallest cap of its layers. A request asking for more is refused; a
request that names no limit is left alone (the provider's own default applies), because inventing a limit
would silently truncate answers the caller did not ask to truncate.

Each check yields one ``Verdict`` (allow or deny, the rule ids that decided, why), so the policy stage records
one event per decision rather than one per glob.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Layer", "ModelPolicy", "PolicySpec", "Verdict", "decide", "token_cap"]


class PolicySpec(BaseModel):
    """A policy as the admin API, the CLI and the store's JSON columns spell it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_models: list[str] = Field(default_factory=list, description="Globs over provider/model; empty: all.")
    deny_models: list[str] = Field(default_factory=list, description="Globs over provider/model; deny wins.")
    providers: list[str] = Field(default_factory=list, description="Provider allowlist; empty: every provider.")
    max_tokens: int | None = Field(default=None, ge=1, description="Largest max_tokens a request may ask for.")


@dataclasses.dataclass(frozen=True, slots=True)
class ModelPolicy:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    providers: frozenset[str] = frozenset()
    max_tokens: int | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None, *, allow: Sequence[str] | None = None) -> ModelPolicy:
        """From stored JSON (already validated on the way in); ``allow`` overrides its globs (a key's models)."""
        spec = PolicySpec.model_validate(data or {})
        return cls(
            allow=tuple(spec.allow_models if allow is None else allow),
            deny=tuple(spec.deny_models),
            providers=frozenset(spec.providers),
            max_tokens=spec.max_tokens,
        )

    @property
    def empty(self) -> bool:
        return not (self.allow or self.deny or self.providers or self.max_tokens)


@dataclasses.dataclass(frozen=True, slots=True)
class Layer:
    rule: str  # the rule id prefix, e.g. "workspace:acme"
    policy: ModelPolicy


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    rule: str
    reason: str


_ALLOW_ALL = Verdict(True, "default:allow", "no policy restricts this model")


def decide(layers: Sequence[Layer], qualified: str) -> Verdict:
    """Whether ``qualified`` (``provider/model``) passes every layer; the first refusing rule otherwise."""
    provider = qualified.partition("/")[0]
    matched: list[str] = []
    for layer in layers:
        policy = layer.policy
        for glob in policy.deny:
            if fnmatchcase(qualified, glob):
                return Verdict(False, f"{layer.rule}:deny_models", f"'{qualified}' matches the deny glob '{glob}'")
        if policy.allow:
            if not any(fnmatchcase(qualified, glob) for glob in policy.allow):
                allowed = ", ".join(policy.allow)
                return Verdict(False, f"{layer.rule}:allow_models", f"'{qualified}' is not among {allowed}")
            matched.append(f"{layer.rule}:allow_models")
        if policy.providers:
            if provider not in policy.providers:
                allowed = ", ".join(sorted(policy.providers))
                return Verdict(False, f"{layer.rule}:providers", f"provider '{provider}' is not among {allowed}")
            matched.append(f"{layer.rule}:providers")
    if not matched:
        return _ALLOW_ALL
    return Verdict(True, ",".join(matched), f"'{qualified}' is allowed")


def token_cap(layers: Sequence[Layer]) -> tuple[int, str] | None:
    """The smallest max-token cap of the layers and the rule that sets it, or None when none has one."""
    best: tuple[int, str] | None = None
    for layer in layers:
        cap = layer.policy.max_tokens
        if cap is not None and (best is None or cap < best[0]):
            best = (cap, f"{layer.rule}:max_tokens")
    return best
