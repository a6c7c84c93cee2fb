"""Agents' wallets: one EVM key per agent, sealed with the master key's derived key before it is stored."""

from __future__ import annotations

import secrets
from typing import Any

from eth_account import Account

from .service import Payments

__all__ = ["new_wallet", "wallet_context"]


def wallet_context(wallet: dict[str, Any]) -> str:
    return f"wallet|{wallet['id']}|{wallet['workspace_id']}|{wallet['agent_id']}"


def new_wallet(payments: Payments, workspace_id: str, agent_id: str) -> dict[str, Any]:
    """A fresh EVM key for the agent, sealed for storage (the plaintext key leaves this function only sealed)."""
    account = Account.create()
    wallet = {
        "id": f"wal_{secrets.token_hex(8)}",
        "workspace_id": workspace_id,
        "agent_id": agent_id,
        "address": account.address,
        "policy": {},
    }
    wallet["ciphertext"] = payments.box.seal(account.key.hex(), context=wallet_context(wallet))
    return wallet
