"""Authentication: the bearer key against the in-memory key snapshot. No database I/O here."""

from __future__ import annotations

from ..call import Call, Principal, Reply
from ..errors import AuthenticationError
from ..keyring import Keyring, Rejection
from ..pipeline import Handler
from ..services import Services

__all__ = ["AuthenticateStage", "authenticate_request"]


def authenticate_request(keyring: Keyring, authorization: str | None) -> Principal:
    """The principal behind an ``Authorization: Bearer`` header, or ``AuthenticationError``."""
    if not authorization or authorization.strip().lower() == "bearer":
        raise AuthenticationError(
            "Missing API key. Send it as 'Authorization: Bearer <key>' (the OpenAI SDKs do this with api_key=...)."
        )
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise AuthenticationError("Malformed Authorization header. Use 'Authorization: Bearer <key>'.")
    try:
        return keyring.authenticate(secret)
    except Rejection as exc:
        raise AuthenticationError(str(exc)) from None


class AuthenticateStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.keyring = services.keyring

    async def __call__(self, call: Call) -> Reply:
        call.principal = authenticate_request(self.keyring, call.request.headers.get("authorization"))
        return await self.next(call)
