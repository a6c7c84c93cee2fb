"""Governance: model policy layers, the snapshot the hot path reads, and provider keys sealed at rest.

Entities live in the store (``server.storage.governance``); the admin API (``server.admin.entities``) and the
CLI (``server.commands_governance``) change them; the keyring reloads this snapshot when they change.
"""

from .crypto import SealError, SecretBox
from .policy import Layer, ModelPolicy, PolicySpec, Verdict, decide, token_cap
from .snapshot import Governance

__all__ = [
    "Governance",
    "Layer",
    "ModelPolicy",
    "PolicySpec",
    "SealError",
    "SecretBox",
    "Verdict",
    "decide",
    "token_cap",
]
