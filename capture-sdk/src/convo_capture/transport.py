"""Where the SDK's batches go: the HTTP collector, or straight into a landing folder.

Both transports take a batch of encoded events (one JSON object per item)
and say what happened, so the tracker decides about retries and the spool in
one place.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("convo_capture")

# hosts already warned about (once per process and host)
_WARNED_PLAIN_HTTP: set = set()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class SendOutcome:
    """The answer to one batch.

    kind: ``delivered`` (``results`` has one entry per event), ``retry``
    (429, 5xx, network error; ``retry_after`` seconds if the server said),
    ``too_large`` (413: split the batch), ``unauthorized`` (401/403: keep the
    events, fix the token), ``fatal`` (another 4xx: the batch cannot succeed).
    """

    kind: str
    results: list[dict] = field(default_factory=list)
    retry_after: float | None = None
    message: str = ""


class HttpTransport:
    """POST batches to a collector's ``/v1/events`` over one kept-alive connection."""

    def __init__(self, endpoint: str, token: str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"collector endpoint {endpoint!r} must look like http://host:port")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path.rstrip("/") or "") + "/v1/events"
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
            if parts.scheme == "http" and not _is_loopback(parts.hostname) and parts.hostname not in _WARNED_PLAIN_HTTP:
                # anyone on the way can read the key (and the events): say so, once
                _WARNED_PLAIN_HTTP.add(parts.hostname)
                log.warning("capture: the collector key is sent over plain http to %s, readable by anyone on the "
                            "network path; use an https:// endpoint", parts.hostname)
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = cls(self._host, self._port, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def forget_connection(self) -> None:
        """In a forked child: the socket is the parent's; leave it to the parent."""
        self._connection = None

    def send(self, lines: list[bytes]) -> SendOutcome:
        body = b'{"events":[' + b",".join(lines) + b"]}"
        try:
            connection = self._connect()
            connection.request("POST", self._path, body=body, headers=self._headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException, socket.timeout) as error:
            self.close()
            return SendOutcome("retry", message=f"network error: {error}")
        status = response.status
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        if status == 200:
            try:
                return SendOutcome("delivered", results=json.loads(payload)["results"])
            except (ValueError, KeyError, TypeError) as error:
                return SendOutcome("retry", message=f"unreadable answer from collector: {error}")
        message = payload[:500].decode("utf-8", errors="replace")
        retry_after = _retry_after_seconds(response.getheader("Retry-After"))
        if status == 429 or status >= 500 or status == 408:
            return SendOutcome("retry", retry_after=retry_after, message=f"HTTP {status}: {message}")
        if status == 413:
            return SendOutcome("too_large", message=message)
        if status in (401, 403):
            return SendOutcome("unauthorized", message=f"HTTP {status}: {message}")
        return SendOutcome("fatal", message=f"HTTP {status}: {message}")


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class LandingTransport:
    """Write batches as JSONL files into a landing folder, for batch jobs with no collector.

    Atomic: each batch is written to ``<landing>/.tmp/`` (ignored by the
    loader), fsynced, then renamed to ``<landing>/<subfolder>/<date>/`` so
    the loader never sees a partial file. Validation happens in staging.
    """

    def __init__(self, landing_dir: Path | str, subfolder: str = "sdk", file_mode: int = 0o600) -> None:
        self.landing_dir = Path(landing_dir)
        self.subfolder = subfolder
        self.file_mode = file_mode

    def close(self) -> None:
        pass

    def forget_connection(self) -> None:
        pass

    def send(self, lines: list[bytes]) -> SendOutcome:
        try:
            write_landing_file(self.landing_dir, self.subfolder, lines, self.file_mode)
        except OSError as error:
            return SendOutcome("retry", message=f"cannot write to {self.landing_dir}: {error}")
        return SendOutcome("delivered", results=[{"status": "accepted"}] * len(lines))


def write_landing_file(landing_dir: Path, subfolder: str, lines: list[bytes], file_mode: int = 0o600) -> Path:
    """Write ``lines`` as one new JSONL file in the landing folder, atomically (``file_mode``, 0600)."""
    now = datetime.now(timezone.utc)
    tmp_dir = landing_dir / ".tmp"
    final_dir = landing_dir / subfolder / now.strftime("%Y-%m-%d")
    folder_mode = directory_mode(file_mode)
    tmp_dir.mkdir(parents=True, exist_ok=True, mode=folder_mode)
    final_dir.mkdir(parents=True, exist_ok=True, mode=folder_mode)
    name = f"events-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.jsonl"
    tmp_path = tmp_dir / (name + ".part")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode)
    with open(fd, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
    final_path = final_dir / name
    os.replace(tmp_path, final_path)
    fsync_directory(final_dir)
    return final_path


def directory_mode(file_mode: int) -> int:
    """The folder mode matching a file mode: search (x) wherever reading (r) is allowed."""
    return 0o700 | (file_mode & 0o077) | ((file_mode & 0o044) >> 2)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
