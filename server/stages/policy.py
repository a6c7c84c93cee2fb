"""Model policy: workspace, key and agent layers (``server.governance.policy``) judged against ``provider/model``.

The match uses the resolved, qualified name, so a bare ``gpt-4o-mini`` is judged as ``openai/gpt-4o-mini``.
A router call is judged deployment by deployment: it is allowed when one of its group's models passes (the
route stage never tries the others). The agent is the key's bound agent, else the ``Alephant-Agent-Id``
header's agent when it is registered in the key's workspace; a key bound to an agent cannot act as another.

Every decision is one ``PolicyEvent`` on the call (its log row keeps them): the model decision, the agent
binding when it refuses, and the max-token cap when a layer sets one.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from ..call import Call, PolicyEvent, Principal, Reply
from ..errors import PolicyDenied
from ..governance.policy import Layer, Verdict, decide, token_cap
from ..governance.snapshot import Governance
from ..keyring import Keyring
from ..pipeline import Handler
from ..services import Services

__all__ = ["PolicyStage", "call_agent", "model_allowed", "principal_allows"]

# Chat Completions spells the output limit two ways; the canonical body keeps whichever the client sent.
_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens")


def model_allowed(patterns: tuple[str, ...], qualified: str) -> bool:
    """A key's allow globs alone (empty allows all); ``principal_allows`` applies every layer."""
    return not patterns or any(fnmatchcase(qualified, pattern) for pattern in patterns)


def principal_allows(keyring: Keyring, principal: Principal, qualified: str, agent_id: str | None = None) -> bool:
    """Whether every policy layer of ``principal`` (and its agent) allows ``qualified``: model listings use it."""
    governance = keyring.governance
    registered = agent_id is not None and governance.is_agent(principal.workspace_id, agent_id)
    agent = principal.agent_id or (agent_id if registered else None)
    return decide(governance.layers(principal, agent), qualified).allowed


def call_agent(governance: Governance, principal: Principal, header_agent: str | None) -> str | None:
    """The agent whose policy governs the call; a key bound to one agent may not present another."""
    if principal.agent_id is not None:
        if header_agent is not None and header_agent != principal.agent_id:
            raise PolicyDenied(
                f"This API key is bound to agent '{principal.agent_id}' and may not act as agent '{header_agent}'. "
                "Drop the Alephant-Agent-Id header or use that agent's own key.",
                param="Alephant-Agent-Id",
            )
        return principal.agent_id
    if header_agent is not None and governance.is_agent(principal.workspace_id, header_agent):
        return header_agent
    return None


def _requested_tokens(body: Mapping[str, Any]) -> tuple[str, int] | None:
    for field in _TOKEN_FIELDS:
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return field, value
    return None


def _denied(verdict: Verdict, what: str) -> PolicyDenied:
    return PolicyDenied(
        f"Policy rule {verdict.rule} denies {what}: {verdict.reason}. Use an allowed model, or ask an admin to "
        "change the policy (alephant workspaces|agents|keys ...).",
        param="model",
    )


class PolicyStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.keyring = services.keyring

    async def __call__(self, call: Call) -> Reply:
        assert call.principal is not None and call.target is not None
        principal = call.principal
        governance = self.keyring.governance
        try:
            agent = call_agent(governance, principal, call.context.agent_id)
        except PolicyDenied as exc:
            call.policy_events.append(PolicyEvent("deny", f"key:{principal.key_id}:agent", exc.message))
            raise
        if principal.agent_id is not None:
            call.context.agent_id = principal.agent_id  # the bound agent's calls are logged as that agent
        layers = governance.layers(principal, agent)
        if call.group is not None:
            names = [d.target.qualified for d in call.group.deployments]
            verdicts = [decide(layers, name) for name in names]
            verdict = next((v for v in verdicts if v.allowed), verdicts[0])
            what = f"every model of '{call.model}' ({', '.join(names)})"
        else:
            verdict = decide(layers, call.target.qualified)
            what = f"model '{call.target.qualified}'"
        call.policy_events.append(PolicyEvent("allow" if verdict.allowed else "deny", verdict.rule, verdict.reason))
        if not verdict.allowed:
            raise _denied(verdict, what)
        self._check_tokens(call, layers)
        return await self.next(call)

    @staticmethod
    def _check_tokens(call: Call, layers: tuple[Layer, ...]) -> None:
        cap = token_cap(layers)
        if cap is None:
            return
        limit, rule = cap
        asked = _requested_tokens(call.body)
        if asked is None:  # no limit named: the provider's default applies, the cap does not invent one
            call.policy_events.append(PolicyEvent("allow", rule, f"no output limit requested (cap {limit})"))
            return
        field, value = asked
        if value > limit:
            reason = f"{field} {value} is above the cap of {limit}"
            call.policy_events.append(PolicyEvent("deny", rule, reason))
            raise PolicyDenied(
                f"Policy rule {rule} denies this request: {reason}. Ask for at most {limit} tokens.", param=field
            )
        call.policy_events.append(PolicyEvent("allow", rule, f"{field} {value} is within the cap of {limit}"))
