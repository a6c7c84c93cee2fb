"""Provider keys at rest: AES-256-GCM under a key derived from the master key (HKDF-SHA256).

A sealed value is ``v1.<key id>.<base64url(nonce || ciphertext+tag)>``:

- the version says how the rest is built, so the scheme can change without guessing;
- the key id (8 hex digits of a second HKDF output) names which master key sealed it, so opening with another
  master key fails with a message that says so rather than a bare authentication error, and a rotation can
  tell old values from new ones;
- a random 96-bit nonce per value; the associated data binds the value to its row (id, workspace, provider),
  so a ciphertext copied onto another row does not open.

Nothing here holds the master key itself: ``SecretBox`` keeps only the derived keys.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SealError", "SecretBox"]

_VERSION = "v1"
_NONCE_BYTES = 12
_ENCRYPTION_INFO = b"alephant provider keys v1 encryption"
_KEY_ID_INFO = b"alephant provider keys v1 key id"


class SealError(Exception):
    """A sealed value that cannot be opened with this master key; the message never contains key material."""


def _derive(master_key: str, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master_key.encode())


class SecretBox:
    """Seal and open provider keys with the master key's derived key.

    Usage::

        box = SecretBox(master_key)
        sealed = box.seal("sk-live-...", context="pk_1|default|openai")
        assert box.open(sealed, context="pk_1|default|openai") == "sk-live-..."
    """

    def __init__(self, master_key: str) -> None:
        if not master_key:
            raise ValueError("the master key is empty")
        self._aead = AESGCM(_derive(master_key, _ENCRYPTION_INFO, 32))
        self.key_id = _derive(master_key, _KEY_ID_INFO, 4).hex()

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, secret: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), context.encode())
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, *, context: str) -> str:
        version, _, rest = value.partition(".")
        key_id, _, payload = rest.partition(".")
        if version != _VERSION or not payload:
            raise SealError(f"not a sealed provider key of version {_VERSION}")
        if key_id != self.key_id:
            raise SealError(f"sealed with another master key (key id {key_id}, this one is {self.key_id})")
        try:
            raw = base64.urlsafe_b64decode(payload)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, ValueError):
            raise SealError("the sealed value is damaged or belongs to another row") from None
