"""The provider/model catalog: which upstreams exist, how to reach them, and how a model name resolves.

Resolution of the ``model`` a client sends, in order:
  1. an alias from configuration (``fast: mock/mock-1``) is replaced by its target;
  2. ``provider/model`` with a known provider resolves to that provider, any model id (providers ship models
     faster than catalogs; the upstream answers 404 for a model it lacks);
  3. a bare catalog name (``gpt-4o-mini``) resolves to the first provider listing it, preferring providers
     that have a key;
  4. anything else is unknown (``LookupError``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml

from .types import Endpoint, ProviderSpec

__all__ = ["Catalog", "ModelEntry", "Resolved"]


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    provider: ProviderSpec
    model: str

    @property
    def qualified(self) -> str:
        return f"{self.provider.id}/{self.model}"


@dataclasses.dataclass(frozen=True, slots=True)
class ModelEntry:
    provider: ProviderSpec
    model: str
    endpoint: Endpoint


def _load_rows() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data/providers.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


class Catalog:
    """Immutable after construction; the gateway builds one at start-up."""

    def __init__(
        self,
        providers: list[ProviderSpec],
        *,
        aliases: Mapping[str, str] | None = None,
        prices: Mapping[str, Mapping[str, Decimal]] | None = None,
    ) -> None:
        self._providers = {spec.id: spec for spec in providers}
        self._aliases = dict(aliases or {})
        self.prices: dict[str, dict[str, Decimal]] = {k: dict(v) for k, v in (prices or {}).items()}
        self._by_name: dict[str, list[ProviderSpec]] = {}
        for spec in providers:
            for model in (*spec.models, *spec.embedding_models):
                self._by_name.setdefault(model, []).append(spec)

    @classmethod
    def load(
        cls,
        *,
        env: Mapping[str, str],
        custom: Mapping[str, Mapping[str, Any]] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> Catalog:
        """The built-in rows plus custom OpenAI-compatible backends; keys are read from ``env`` by name."""
        data = _load_rows()
        specs: list[ProviderSpec] = []
        for row in data.get("providers", []):
            key_env = row.get("api_key_env")
            specs.append(
                ProviderSpec(
                    id=row["id"],
                    display_name=row.get("name", row["id"]),
                    adapter=row.get("adapter", "openai"),
                    transport=row.get("transport", "http"),
                    base_url=row.get("base_url", ""),
                    api_key_env=key_env,
                    api_key=env.get(key_env) if key_env else None,
                    requires_key=row.get("requires_key", True),
                    models=tuple(row.get("models") or ()),
                    embedding_models=tuple(row.get("embedding_models") or ()),
                )
            )
        for provider_id, row in (custom or {}).items():
            key_env = row.get("api_key_env")
            specs = [s for s in specs if s.id != provider_id]  # configuration overrides a built-in row
            specs.append(
                ProviderSpec(
                    id=provider_id,
                    display_name=provider_id,
                    base_url=str(row["base_url"]),
                    api_key_env=key_env,
                    api_key=env.get(key_env) if key_env else None,
                    requires_key=bool(key_env),
                    models=tuple(row.get("models") or ()),
                    embedding_models=tuple(row.get("embedding_models") or ()),
                )
            )
        prices = {
            name: {unit: Decimal(str(value)) for unit, value in row.items()}
            for name, row in (data.get("prices") or {}).items()
        }
        return cls(specs, aliases=aliases, prices=prices)

    def provider(self, provider_id: str) -> ProviderSpec | None:
        return self._providers.get(provider_id)

    @property
    def providers(self) -> list[ProviderSpec]:
        return list(self._providers.values())

    def resolve(self, name: str) -> Resolved:
        target = self._aliases.get(name, name)
        head, sep, tail = target.partition("/")
        if sep and tail:
            spec = self._providers.get(head)
            if spec is not None:
                return Resolved(spec, tail)
        candidates = self._by_name.get(target)
        if candidates:
            spec = next((s for s in candidates if s.available), candidates[0])
            return Resolved(spec, target)
        raise LookupError(name)

    def entries(self) -> Iterator[ModelEntry]:
        """Every listed model of every usable provider."""
        for spec in self._providers.values():
            if not spec.available:
                continue
            for model in spec.models:
                yield ModelEntry(spec, model, "chat")
            for model in spec.embedding_models:
                yield ModelEntry(spec, model, "embeddings")
