"""The governance snapshot the hot path reads: policies as ready layers and provider keys already opened.

Built once per reload of the key snapshot (``server.keyring``), never per request: every lookup a call makes
is a dict lookup. A provider key that this process cannot open (sealed with another master key, say mid
rotation) is left out with a warning naming its id, so the workspace falls back to the environment's key
rather than the gateway failing to reload.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping

from ..call import Principal
from ..storage.governance import AgentRecord, ProviderKeyRecord, WorkspaceRecord, provider_key_context
from .crypto import SealError, SecretBox
from .policy import Layer, ModelPolicy

__all__ = ["Governance"]

_log = logging.getLogger("alephant.governance")


def _layer(rule: str, policy: ModelPolicy) -> Layer | None:
    return None if policy.empty else Layer(rule, policy)


@dataclasses.dataclass(frozen=True, slots=True)
class Governance:
    """Workspaces, agents, key policies and provider keys of every workspace, as of one snapshot version."""

    workspaces: Mapping[str, WorkspaceRecord] = dataclasses.field(default_factory=dict)
    agents: Mapping[tuple[str, str], AgentRecord] = dataclasses.field(default_factory=dict)
    workspace_layers: Mapping[str, Layer] = dataclasses.field(default_factory=dict)
    agent_layers: Mapping[tuple[str, str], Layer] = dataclasses.field(default_factory=dict)
    key_layers: Mapping[str, Layer] = dataclasses.field(default_factory=dict)
    provider_secrets: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        *,
        workspaces: Iterable[WorkspaceRecord],
        agents: Iterable[AgentRecord],
        key_policies: Iterable[tuple[str, ModelPolicy]],
        provider_keys: Iterable[ProviderKeyRecord],
        box: SecretBox,
    ) -> Governance:
        by_id = {w.id: w for w in workspaces}
        by_agent = {(a.workspace_id, a.id): a for a in agents}
        secrets: dict[tuple[str, str], str] = {}
        for record in provider_keys:  # oldest first: the newest live key of a provider wins
            try:
                secrets[(record.workspace_id, record.provider)] = box.open(
                    record.ciphertext, context=provider_key_context(record)
                )
            except SealError as exc:
                _log.warning("provider key %s left out of the snapshot: %s", record.id, exc)
        workspace_layers = {w: _layer(f"workspace:{w}", ModelPolicy.parse(r.policy)) for w, r in by_id.items()}
        agent_layers = {k: _layer(f"agent:{k[1]}", ModelPolicy.parse(a.policy)) for k, a in by_agent.items()}
        key_layers = {key_id: _layer(f"key:{key_id}", policy) for key_id, policy in key_policies}
        return cls(
            workspaces=by_id,
            agents=by_agent,
            workspace_layers={k: v for k, v in workspace_layers.items() if v is not None},
            agent_layers={k: v for k, v in agent_layers.items() if v is not None},
            key_layers={k: v for k, v in key_layers.items() if v is not None},
            provider_secrets=secrets,
        )

    def is_agent(self, workspace_id: str, agent_id: str) -> bool:
        return (workspace_id, agent_id) in self.agents

    def layers(self, principal: Principal, agent_id: str | None) -> tuple[Layer, ...]:
        """The policy layers of a call, workspace then key then agent, leaving out those without rules."""
        found = (
            self.workspace_layers.get(principal.workspace_id),
            self.key_layers.get(principal.key_id),
            None if agent_id is None else self.agent_layers.get((principal.workspace_id, agent_id)),
        )
        return tuple(layer for layer in found if layer is not None)

    def provider_key(self, workspace_id: str, provider: str) -> str | None:
        """The workspace's own live key for ``provider``, which calls of that workspace use over the environment's."""
        return self.provider_secrets.get((workspace_id, provider))
