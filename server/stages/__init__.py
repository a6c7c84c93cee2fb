"""The pipeline's stages, outermost first. ``server.pipeline`` explains the order."""

from __future__ import annotations

from ..limits.stage import LimitsStage
from .agent_context import AgentContextStage
from .authenticate import AuthenticateStage, authenticate_request
from .dispatch import dispatch
from .ingress import IngressStage
from .policy import PolicyStage, model_allowed
from .record import RecordStage
from .resolve import ResolveStage
from .route import RouteStage

__all__ = ["PASSTHROUGH_STAGES", "STAGES", "authenticate_request", "dispatch", "model_allowed"]

STAGES = (
    RecordStage,
    AgentContextStage,
    AuthenticateStage,
    IngressStage,
    ResolveStage,
    PolicyStage,
    LimitsStage,
    RouteStage,
)

# Direct provider passthrough (``/{provider}/...``): no dialect, no translation; its terminal reads the body,
# applies the model policy by provider and relays (``server.routing.passthrough``).
PASSTHROUGH_STAGES = (RecordStage, AgentContextStage, AuthenticateStage)
