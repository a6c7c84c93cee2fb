"""An in-memory EVM token ledger for the local facilitator: balances, used EIP-3009 nonces, receipts.

Development and tests need settlement without a blockchain, but a fake that accepted any signature would
prove nothing. So ``FakeChain`` keeps the one piece of chain logic that matters to a payment — the token's
``transferWithAuthorization`` — and checks it as the contract does: the EIP-712 signature must recover to
``from``, the window must be open, the nonce unused and the balance sufficient. ``FakeChainSigner`` exposes
it to the x402 SDK's own EVM facilitator through the SDK's ``FacilitatorEvmSigner`` protocol, so verify and
settle run the SDK's code unchanged.

Every address starts with ``initial_balance`` atomic units of every token (a faucet), so a fresh wallet can
pay in development; set it to 0 and ``fund`` addresses to test insufficient balances.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from x402.mechanisms.evm.types import TransactionReceipt

__all__ = ["FakeChain", "FakeChainSigner", "TokenInfo"]

_TRANSFER_TYPES = {
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


@dataclasses.dataclass(frozen=True, slots=True)
class TokenInfo:
    """An EIP-3009 token deployed on the fake chain: its EIP-712 domain name and version."""

    address: str
    name: str
    version: str


class ChainRevert(Exception):
    """A reverted call; messages follow the token's revert strings, which the x402 SDK maps to error codes."""


class FakeChain:
    def __init__(self, *, chain_id: int, tokens: list[TokenInfo], initial_balance: int) -> None:
        self.chain_id = chain_id
        self.tokens = {token.address.lower(): token for token in tokens}
        self.initial_balance = initial_balance
        self._balances: dict[tuple[str, str], int] = {}
        self._used: set[tuple[str, str, str]] = set()
        self._receipts: dict[str, TransactionReceipt] = {}
        self._blocks = itertools.count(1)

    def balance(self, token: str, address: str) -> int:
        return self._balances.get((token.lower(), address.lower()), self.initial_balance)

    def fund(self, token: str, address: str, amount: int) -> None:
        self._balances[(token.lower(), address.lower())] = amount

    def is_used(self, token: str, authorizer: str, nonce: bytes) -> bool:
        return (token.lower(), authorizer.lower(), nonce.hex()) in self._used

    def check_transfer(self, token: str, args: tuple[Any, ...]) -> TokenInfo:
        """Everything ``transferWithAuthorization`` checks before moving funds; raises ``ChainRevert``."""
        info = self.tokens.get(token.lower())
        if info is None:
            raise ChainRevert(f"execution reverted: no token contract at {token}")
        sender, recipient, value, valid_after, valid_before, nonce, v, r, s = args
        now = int(time.time())
        if now <= int(valid_after):
            raise ChainRevert("execution reverted: FiatTokenV2: authorization is not yet valid")
        if now >= int(valid_before):
            raise ChainRevert("execution reverted: FiatTokenV2: authorization is expired")
        if self.is_used(token, sender, nonce):
            raise ChainRevert("execution reverted: FiatTokenV2: authorization is used or canceled")
        signable = encode_typed_data(
            domain_data={
                "name": info.name,
                "version": info.version,
                "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(info.address),
            },
            message_types=_TRANSFER_TYPES,
            message_data={
                "from": to_checksum_address(sender),
                "to": to_checksum_address(recipient),
                "value": int(value),
                "validAfter": int(valid_after),
                "validBefore": int(valid_before),
                "nonce": nonce,
            },
        )
        try:
            signer = Account.recover_message(signable, vrs=(v, r, s))
        except Exception:
            raise ChainRevert("execution reverted: FiatTokenV2: invalid signature") from None
        if signer.lower() != str(sender).lower():
            raise ChainRevert("execution reverted: FiatTokenV2: invalid signature")
        if self.balance(token, sender) < int(value):
            raise ChainRevert("execution reverted: ERC20: transfer amount exceeds balance")
        return info

    def transfer(self, token: str, args: tuple[Any, ...]) -> str:
        """Execute ``transferWithAuthorization``: checks, then moves funds and burns the nonce at once."""
        self.check_transfer(token, args)
        sender, recipient, value, _after, _before, nonce = args[:6]
        self._balances[(token.lower(), str(sender).lower())] = self.balance(token, sender) - int(value)
        self._balances[(token.lower(), str(recipient).lower())] = self.balance(token, recipient) + int(value)
        self._used.add((token.lower(), str(sender).lower(), nonce.hex()))
        tx_hash = "0x" + hashlib.sha256(f"{token}:{sender}:{nonce.hex()}".encode()).hexdigest()
        self._receipts[tx_hash] = TransactionReceipt(status=1, block_number=next(self._blocks), tx_hash=tx_hash)
        return tx_hash

    def receipt(self, tx_hash: str) -> TransactionReceipt:
        found = self._receipts.get(tx_hash)
        if found is None:
            raise LookupError(f"unknown transaction {tx_hash}")
        return found


class FakeChainSigner:
    """The x402 SDK's ``FacilitatorEvmSigner`` over a ``FakeChain`` (the facilitator's own address pays gas)."""

    def __init__(self, chain: FakeChain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)

    def get_addresses(self) -> list[str]:
        return [self.address]

    def get_chain_id(self) -> int:
        return self.chain.chain_id

    def get_code(self, address: str) -> bytes:
        return b"\x60\x80" if address.lower() in self.chain.tokens else b""

    def get_balance(self, address: str, token_address: str) -> int:
        return self.chain.balance(token_address, address)

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        if function_name == "transferWithAuthorization":
            self.chain.check_transfer(address, args)
            return None
        if function_name == "balanceOf":
            return self.chain.balance(address, args[0])
        if function_name == "authorizationState":
            return self.chain.is_used(address, args[0], args[1])
        token = self.chain.tokens.get(address.lower())
        if token is not None and function_name in ("name", "version"):
            return getattr(token, function_name)
        raise ChainRevert(f"execution reverted: {function_name} is not available on the local chain")

    def verify_typed_data(
        self,
        address: str,
        domain: Any,
        types: dict[str, Any],
        primary_type: str,
        message: dict[str, Any],
        signature: bytes,
    ) -> bool:
        domain_data = (
            domain
            if isinstance(domain, dict)
            else {
                "name": domain.name,
                "version": domain.version,
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
            }
        )
        plain = {
            name: [{"name": f.name, "type": f.type} if not isinstance(f, dict) else f for f in fields]
            for name, fields in types.items()
            if name != "EIP712Domain"
        }
        signable = encode_typed_data(domain_data=domain_data, message_types=plain, message_data=message)
        try:
            return bool(Account.recover_message(signable, signature=signature).lower() == address.lower())
        except Exception:
            return False

    def write_contract(
        self,
        address: str,
        abi: list[dict[str, Any]],
        function_name: str,
        *args: Any,
        data_suffix: str | None = None,
    ) -> str:
        if function_name != "transferWithAuthorization" or len(args) != 9:
            raise ChainRevert(f"execution reverted: {function_name} is not available on the local chain")
        return self.chain.transfer(address, args)

    def send_transaction(self, to: str, data: bytes) -> str:
        raise ChainRevert("execution reverted: the local chain runs no contract deployments")

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        return self.chain.receipt(tx_hash)
