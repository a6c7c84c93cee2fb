"""One error tree for every gateway decision and upstream failure; rendered once, at the edge, per dialect.

    GatewayError                      status  code
    ├── InvalidRequest                400     invalid_request_error / a field-specific code
    │   └── InvalidHeader             400     invalid_header
    ├── AuthenticationError           401     invalid_api_key
    ├── BudgetExceeded                402     budget_exceeded (names scope, limit, spent, reset time)
    ├── PolicyDenied                  403     policy_denied
    ├── NotFound                      404     not_found
    │   └── ModelNotFound             404     model_not_found
    ├── Conflict                      409     conflict (exists already, or still referenced)
    ├── PayloadTooLarge               413     request_too_large
    ├── RateLimited                   429     rate_limited (Retry-After, x-ratelimit-* headers)
    │   └── ConcurrencyLimited        429     concurrency_limited
    ├── InternalError                 500     internal_error (a bug: logged with its traceback, never shown)
    ├── ProviderNotConfigured         503     provider_not_configured (no API key for that provider)
    └── UpstreamError                 the provider's 4xx, else 502   upstream_error
        ├── UpstreamUnavailable       502     upstream_unavailable (refused, reset, DNS)
        └── UpstreamTimeout           504     upstream_timeout

Each error knows its HTTP status, a stable ``code`` and an OpenAI-style ``type``; ``param`` names the field
at fault when there is one. Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "ConcurrencyLimited",
    "Conflict",
    "GatewayError",
    "InternalError",
    "InvalidHeader",
    "InvalidRequest",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PolicyDenied",
    "ProviderNotConfigured",
    "RateLimited",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class GatewayError(Exception):
    status: int = 500
    code: str = "internal_error"
    type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request_error"
    type = "invalid_request_error"


class InvalidHeader(InvalidRequest):
    code = "invalid_header"


class AuthenticationError(GatewayError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class BudgetExceeded(GatewayError):
    """A hard budget cannot fit the call's reserved upper bound; the message names scope, limit, spent, reset."""

    status = 402
    code = "budget_exceeded"
    type = "insufficient_quota"


class PolicyDenied(GatewayError):
    status = 403
    code = "policy_denied"
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    type = "invalid_request_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(GatewayError):
    """The change clashes with what exists: a duplicate id or name, or an entity still referenced by others."""

    status = 409
    code = "conflict"
    type = "invalid_request_error"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "request_too_large"
    type = "invalid_request_error"


class RateLimited(GatewayError):
    """A rate limit (rpm, tpm, rpd) is full; ``headers`` carry ``Retry-After`` and ``x-ratelimit-*``."""

    status = 429
    code = "rate_limited"
    type = "rate_limit_error"


class ConcurrencyLimited(RateLimited):
    code = "concurrency_limited"


class InternalError(GatewayError):
    status = 500
    code = "internal_error"


class ProviderNotConfigured(GatewayError):
    status = 503
    code = "provider_not_configured"
    type = "api_error"


class UpstreamError(GatewayError):
    """The provider answered with an error; its status (4xx) and message are kept."""

    status = 502
    code = "upstream_error"
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, headers=headers)
        self.provider = provider


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
