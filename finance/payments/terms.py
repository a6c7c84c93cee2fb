"""What a payment is for: network, token, recipient and amount, converted between nano-USD and token units.

Tokens here are USD stablecoins with a known EIP-712 domain (the x402 SDK's default-asset table: USDC on
Base, Base Sepolia, Ethereum, ...). One token unit of a 6-decimal coin is 1000 nano-USD, so a price is
accepted only when it is a whole number of token units: rounding a price silently would charge something
other than what the endpoint says.
"""

from __future__ import annotations

import dataclasses

from finance.money import NANO_PER_USD, Nano

__all__ = ["Asset", "Terms", "TermsError", "find_asset", "nano_to_units", "units_to_nano"]

_NANO_DECIMALS = 9


class TermsError(ValueError):
    """Terms that cannot be paid as written; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True, slots=True)
class Asset:
    network: str  # CAIP-2, eip155:<chain id>
    address: str  # checksummed token contract
    decimals: int
    name: str  # EIP-712 domain name and version of its EIP-3009 authorizations
    version: str

    @property
    def chain_id(self) -> int:
        return int(self.network.split(":", 1)[1])


def find_asset(network: str, address: str | None = None) -> Asset:
    """The network's default stablecoin, or the named one; ``TermsError`` when unknown."""
    # Imported here, not at the top: the x402 EVM package loads web3 (~0.8 s, ~40 MB), which a gateway that
    # neither sells nor buys should not pay for. ``tests/test_import_cost.py`` keeps it that way.
    from eth_utils.address import is_address, to_checksum_address
    from x402.mechanisms.evm.default_assets import DEFAULT_ASSETS

    if not network.startswith("eip155:") or not network.split(":", 1)[1].isdigit():
        raise TermsError(f"network: {network!r} is not an EVM CAIP-2 id such as eip155:84532")
    rows = DEFAULT_ASSETS.get(network, [])
    if address is not None and not is_address(address):
        raise TermsError(f"asset: {address!r} is not a 0x token address")
    for row in rows:
        if address is None or row["asset"].lower() == address.lower():
            return Asset(
                network=network,
                address=to_checksum_address(row["asset"]),
                decimals=row["decimals"],
                name=row["name"],
                version=row["version"],
            )
    known = ", ".join(row["asset"] for row in rows) or "none"
    raise TermsError(f"asset: no known EIP-3009 stablecoin {address or ''} on {network} (known: {known})")


def _pow10(exponent: int) -> int:
    return int(10**exponent)


def nano_to_units(nano: Nano, decimals: int) -> int:
    """nano-USD to token units, exactly; ``TermsError`` when the amount falls between two units."""
    if decimals >= _NANO_DECIMALS:
        return nano * _pow10(decimals - _NANO_DECIMALS)
    units, rest = divmod(nano, _pow10(_NANO_DECIMALS - decimals))
    if rest:
        raise TermsError(f"price: {nano} nano-USD is not a whole number of token units ({decimals} decimals)")
    return units


def units_to_nano(units: int, decimals: int) -> Nano:
    """Token units to nano-USD (a 1:1 USD stablecoin); finer units round up, so spend is never under-counted."""
    if decimals <= _NANO_DECIMALS:
        return units * _pow10(_NANO_DECIMALS - decimals)
    return -(-units // _pow10(decimals - _NANO_DECIMALS))


@dataclasses.dataclass(frozen=True, slots=True)
class Terms:
    """One price: ``amount_nano`` of ``asset`` to ``pay_to``."""

    asset: Asset
    pay_to: str
    amount_nano: Nano

    def __post_init__(self) -> None:
        from eth_utils.address import is_address

        if not is_address(self.pay_to):
            raise TermsError(f"pay_to: {self.pay_to!r} is not a 0x address")
        if self.amount_nano <= 0:
            raise TermsError("price: must be more than zero")
        nano_to_units(self.amount_nano, self.asset.decimals)

    @property
    def units(self) -> int:
        return nano_to_units(self.amount_nano, self.asset.decimals)

    @property
    def display_amount(self) -> str:
        """The amount in whole tokens as decimal text (what MPP's route input expects)."""
        whole, frac = divmod(self.amount_nano, NANO_PER_USD)
        return f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
