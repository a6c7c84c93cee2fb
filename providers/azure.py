"""The Azure OpenAI adapter: the OpenAI wire at a different address, with a different key header.

Azure serves the same Chat Completions and Embeddings bodies as OpenAI, so this adapter keeps the OpenAI fast
path (the client's bytes go upstream unless the model id or ``stream_options`` must change) and relays answers
with the OpenAI stream translator. Only the request line and the auth header differ:

* deployments API (default): ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=V`` (and
  ``/embeddings``), where ``base_url`` is the resource endpoint ``https://<resource>.openai.azure.com`` and V is
  ``options.api_version`` (default ``DEFAULT_API_VERSION``, the current GA version);
* v1 API (``options.api_version: v1``): ``{base_url}/openai/v1/chat/completions``, model in the body.

The "model" of an Azure provider in the catalog and in configuration IS the deployment name: a client asks for
``azure/<deployment>``. Deployments are usually named after their model (``gpt-4o-mini``), which is also what
prices are looked up by; a deployment with another name is priced by a ``prices:`` entry in configuration.

Auth: ``api-key: <key>`` by default; ``options.auth: bearer`` sends ``Authorization: Bearer <key>`` instead (a
Microsoft Entra ID token in the key variable). Both work on both API shapes.

What maps: everything, byte for byte. Azure additions pass through untouched: ``prompt_filter_results`` (also as
the id-less first stream chunk with ``"choices": []``), per-choice ``content_filter_results``, and
``finish_reason: "content_filter"``, which is already canonical. Errors have OpenAI's shape
(``{"error": {"code", "message"}}``, sometimes ``{"statusCode", "message"}`` from the API gateway in front);
``retry-after`` and ``retry-after-ms`` on 429 are kept by the dispatcher. Nothing is dropped.
"""

from __future__ import annotations

from urllib.parse import quote

from .openai import OpenAIAdapter, OpenAIStreamTranslator
from .types import UpstreamCall, UpstreamRequest

__all__ = ["DEFAULT_API_VERSION", "AzureAdapter", "AzureStreamTranslator", "azure_url"]

DEFAULT_API_VERSION = "2024-10-21"
"""The latest GA data-plane version at the time of writing; ``stream_options.include_usage`` needs 2024-09-01+."""

_V1 = "v1"
_PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}
# What users paste as the endpoint varies: the resource root, or a URL copied from a code sample.
_ENDPOINT_SUFFIXES = ("/openai/v1", "/openai")


def azure_url(base_url: str, deployment: str, endpoint: str, api_version: str) -> str:
    """The request URL for one deployment and endpoint (``chat`` or ``embeddings``)."""
    root = base_url.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if root.endswith(suffix):
            root = root[: -len(suffix)]
            break
    path = _PATHS[endpoint]
    if api_version == _V1:
        return f"{root}/openai/v1{path}"
    return f"{root}/openai/deployments/{quote(deployment, safe='')}{path}?api-version={quote(api_version, safe='')}"


class AzureStreamTranslator(OpenAIStreamTranslator):
    """OpenAI's relay, also when a CRLF pair is split across two reads.

    Proxies in front of Azure resources (API Management) may frame SSE with CRLF; the OpenAI translator folds
    CRLF within one read only, so a read ending in ``\\r`` holds it back until the next read.
    """

    __slots__ = ("_cr",)

    def __init__(self, *, client_wants_usage: bool) -> None:
        super().__init__(client_wants_usage=client_wants_usage)
        self._cr = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._cr:
            data, self._cr = b"\r" + data, False
        if data.endswith(b"\r"):
            data, self._cr = data[:-1], True
        return super().feed(data)

    def finish(self) -> list[bytes]:
        self._cr = False
        return super().finish()


class AzureAdapter(OpenAIAdapter):
    """OpenAI's translation (identity) with Azure's URL scheme and key header."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        # The deployment is in the URL; the body keeps ``model`` = deployment as the AzureOpenAI SDK sends it
        # (the v1 API requires it there).
        request = super().build_request(call)
        options = call.provider.options
        request.url = azure_url(
            call.provider.base_url, call.model, call.endpoint, options.get("api_version") or DEFAULT_API_VERSION
        )
        key = call.provider.api_key
        if key and options.get("auth", "api-key").lower() != "bearer":
            del request.headers["authorization"]  # set from the key by the OpenAI adapter
            request.headers["api-key"] = key
        return request

    def stream(self, call: UpstreamCall) -> AzureStreamTranslator:
        return AzureStreamTranslator(client_wants_usage=call.client_wants_usage)
