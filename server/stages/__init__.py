"""The pipeline's stages, outermost first. ``server.pipeline`` explains the order."""

from __future__ import annotations

from .agent_context import AgentContextStage
from .authenticate import AuthenticateStage, authenticate_request
from .dispatch import dispatch
from .ingress import IngressStage
from .policy import PolicyStage, model_allowed
from .record import RecordStage
from .resolve import ResolveStage

__all__ = ["STAGES", "authenticate_request", "dispatch", "model_allowed"]

STAGES = (RecordStage, AgentContextStage, AuthenticateStage, IngressStage, ResolveStage, PolicyStage)
