"""Agents' wallets: one EVM key per agent, sealed with the master key's derived key before it is stored."""

from __future__ import annotations

import secrets
from typing import Any

from finance import payments as pay  # its names load the payment SDKs on first use

from ..governance.crypto import SecretBox

__all__ = ["new_wallet", "wallet_context", "wallet_json"]


def wallet_context(wallet: dict[str, Any]) -> str:
    return f"wallet|{wallet['id']}|{wallet['workspace_id']}|{wallet['agent_id']}"


def new_wallet(box: SecretBox, workspace_id: str, agent_id: str) -> dict[str, Any]:
    """A fresh EVM key for the agent, sealed for storage (the plaintext key leaves this function only sealed)."""
    account = pay.new_account()
    wallet = {
        "id": f"wal_{secrets.token_hex(8)}",
        "workspace_id": workspace_id,
        "agent_id": agent_id,
        "address": account.address,
        "policy": {},
    }
    wallet["ciphertext"] = box.seal(account.key.hex(), context=wallet_context(wallet))
    return wallet


def wallet_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored wallet without its sealed key, as the admin API and ``alephant wallets list --json`` show it."""
    return {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "agent_id": row["agent_id"],
        "address": row["address"],
        "policy": row["policy"],
        "created_at": row["created_at"].isoformat(),
    }
