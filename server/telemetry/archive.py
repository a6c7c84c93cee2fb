"""Body archival: each opted-in request's bodies written as one JSON object, off the request path.

``Archiver.submit`` names the object (``[prefix]<workspace>/<yyyy>/<mm>/<dd>/<request id>.json``, returned to
be stored as the log row's ``body_ref``) and queues the call for a worker thread, which redacts and writes it to
S3-compatible storage through boto3 or to a local directory. The object::

    {"request_id", "workspace_id", "created_at",
     "request": {"headers": {...}, "body": <JSON value or text>, "truncated": bool},
     "response": {"status": int, "body": <JSON value or text>, "truncated": bool}}

Bodies longer than ``max_body_bytes`` are cut there (``truncated``). A streamed answer is archived as the SSE
bytes relayed to the client. A full queue means the call is not archived (its row has no ``body_ref``); a failed
write is logged and counted, and its row's ``body_ref`` then names a missing object. ``GET
/v1/logs/{request_id}/body`` (``server.run_routes``) reads an object back through ``Archiver.read``.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

import orjson

from ..storage.records import LogRow
from ._worker import Worker
from .event import Finished
from .redact import credential_values, redact_headers, redact_json, scrub

__all__ = ["Archiver", "LocalStore", "ObjectStore", "S3Store", "object_key"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


class ObjectStore(Protocol):
    """Where archived objects go: ``put(key, data)`` and ``get(key)`` (None when absent); both may block."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...


class LocalStore:
    """The embedded default: one file per object under ``directory``, written whole (temp file, then rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, key: str, data: bytes) -> None:
        path = self.directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return (self.directory / key).read_bytes()
        except FileNotFoundError:
            return None


class S3Store:
    """An S3 bucket (or any S3-compatible server at ``endpoint_url``); credentials come from boto3's usual chain."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        import boto3  # imported only when a bucket is configured: it costs ~0.3 s at start-up

        self.bucket = bucket
        self._client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")

    def get(self, key: str) -> bytes | None:
        try:
            data: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None
        return data


def _segment(value: str | None) -> str:
    # Ids are validated upstream, but a key segment must never be "..", empty, or contain a separator.
    cleaned = _UNSAFE.sub("_", value or "_")
    return "_" + cleaned[1:] if cleaned.startswith(".") else cleaned


def object_key(row: LogRow, prefix: str = "") -> str:
    day = row.created_at.strftime("%Y/%m/%d")
    return f"{prefix}{_segment(row.workspace_id)}/{day}/{_segment(row.request_id)}.json"


def _body(data: bytes, cap: int, secrets: list[bytes]) -> dict[str, Any]:
    truncated = len(data) > cap
    data = scrub(data[:cap], secrets)
    if not truncated:
        try:
            return {"body": redact_json(orjson.loads(data)), "truncated": False}
        except orjson.JSONDecodeError:
            pass
    try:
        return {"body": data.decode(), "truncated": truncated}
    except UnicodeDecodeError:  # binary, or a cut through a multi-byte character
        return {
            "body": data.decode(errors="replace"),
            "truncated": truncated,
            "base64": base64.b64encode(data).decode(),
        }


class Archiver:
    """Usage::

    archiver = Archiver(LocalStore(Path(".alephant/archive")), workspaces={"*"}, max_body_bytes=1 << 20)
    cap = archiver.cap("acme")             # bytes of a stream to keep for this workspace, 0 when not archived
    row.body_ref = archiver.submit(finished)  # None when the workspace is not archived or the queue is full
    archiver.close()                       # in a thread, at shutdown: writes everything queued
    """

    def __init__(
        self, store: ObjectStore, *, workspaces: set[str], max_body_bytes: int, prefix: str = "", queue_size: int = 1000
    ) -> None:
        self.store = store
        self._everyone = "*" in workspaces
        self._workspaces = frozenset(workspaces)
        self._cap = max_body_bytes
        self._prefix = prefix
        self._worker: Worker[tuple[str, Finished]] = Worker("archive", handle=self._write, size=queue_size)
        self.written = 0

    def cap(self, workspace_id: str | None) -> int:
        """How many bytes of a streamed answer to keep: one past the cap, so the writer can tell it was cut."""
        return self._cap + 1 if self.wants(workspace_id) else 0

    def wants(self, workspace_id: str | None) -> bool:
        return workspace_id is not None and (self._everyone or workspace_id in self._workspaces)

    def submit(self, finished: Finished) -> str | None:
        if not self.wants(finished.row.workspace_id):
            return None
        key = object_key(finished.row, self._prefix)
        return key if self._worker.put((key, finished)) else None

    @property
    def refused(self) -> int:
        return self._worker.refused

    @property
    def failed(self) -> int:
        return self._worker.failed

    def close(self) -> None:
        self._worker.close()

    def read(self, key: str) -> bytes | None:
        """An archived object by its ``body_ref``, None when absent (not written yet, or its write failed); blocks."""
        return self.store.get(key)

    def _write(self, item: tuple[str, Finished]) -> None:
        key, finished = item
        self.store.put(key, self.render(finished))
        self.written += 1

    def render(self, finished: Finished) -> bytes:
        row = finished.row
        secrets = credential_values(finished.headers)
        headers = {
            name: scrub(value.encode(), secrets).decode() for name, value in redact_headers(finished.headers).items()
        }
        response: dict[str, Any] = {"status": row.http_status, **_body(finished.response_body, self._cap, secrets)}
        if row.error_code is not None:  # errors are rendered at the edge, after this stage: keep what they said
            response["error"] = {"code": row.error_code, "message": row.error_message}
        document = {
            "request_id": row.request_id,
            "workspace_id": row.workspace_id,
            "created_at": row.created_at.isoformat(),
            "request": {"headers": headers, **_body(finished.request_body, self._cap, secrets)},
            "response": response,
        }
        return orjson.dumps(document)
