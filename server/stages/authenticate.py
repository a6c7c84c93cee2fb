"""Authentication: the bearer key against the in-memory key snapshot. No database I/O here."""

from __future__ import annotations

from ..call import Call, Principal, Reply
from ..errors import AuthenticationError
from ..keyring import Keyring, Rejection
from ..pipeline import Handler
from ..services import Services

__all__ = ["AuthenticateStage", "authenticate_request"]


def authenticate_request(keyring: Keyring, authorization: str | None, api_key: str | None = None) -> Principal:
    """The principal behind ``Authorization: Bearer`` (or Anthropic's ``x-api-key``), or ``AuthenticationError``."""
    if api_key and not authorization:
        authorization = f"Bearer {api_key}"
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
        headers = call.request.headers
        call.principal = authenticate_request(self.keyring, headers.get("authorization"), headers.get("x-api-key"))
        return await self.next(call)
