"""The collector's API keys: scopes, bindings to agents, a file of hashes, rotation without a restart.

Two scopes, as analytics products separate the key an app embeds from the
keys that read data back:

- ``ingest``: send events (``POST /v1/events``, ``/v1/traces``, ``/v1/logs``,
  ``/api/track-interaction``). This is the key an SDK, an exporter or a web
  widget holds: it can never read anything back.
- ``read``: the live state (``GET /v1/conversations...``, ``/v1/live``),
  for the dashboard's Live page and tools of the team.

A key may be bound to agents: to a list of ``agent_ids``, or to a
``project`` (a named list of agent ids in the same file, so adding an agent
to a project extends every key of it). A bound ingest key writes only
events whose ``properties.agent_id`` is one of its agents (an event without
one is stored with the agent's id when the key has exactly one agent, and
rejected otherwise); a bound read key reads only conversations all of whose
events came from its agents. An unbound key covers every agent.

The file (``--keys-file``, ``CONVO_COLLECTOR_KEYS_FILE``, default
``data/collector_keys.json``) holds the SHA-256 of each secret, never the
secret: a secret is 256 random bits, so a fast hash is as safe to store as a
slow one and costs nothing per request. A presented key names its record
(``cw_<scope>_<key id>_<secret>``); the digests are compared in constant
time. The file is read again when it changes (checked at most once a
second), so keys are created, rotated and revoked without a restart; a file
that cannot be read keeps the keys read before and logs why.

``CONVO_COLLECTOR_TOKENS`` (the flat list of before) still works: each token
is a full-access key (both scopes, every agent), with a deprecation warning
at start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("convo_warehouse.collector")

SCOPES = ("ingest", "read")
KEYS_FILE_ENV = "CONVO_COLLECTOR_KEYS_FILE"
DEFAULT_KEYS_FILE = "data/collector_keys.json"
LEGACY_TOKENS_ENV = "CONVO_COLLECTOR_TOKENS"
_PREFIX = "cw_"
_KEY_ID_CHARS = 12
# what a token's scope part says, for people and secret scanners (the file decides the scopes)
_SCOPE_TAGS = {frozenset({"ingest"}): "ingest", frozenset({"read"}): "read", frozenset(SCOPES): "full"}
_RELOAD_EVERY = 1.0  # seconds between checks of the file for changes


class KeyFileError(ValueError):
    """The keys file cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Key:
    """One key as the collector sees it (the secret's digest stays in the store)."""

    key_id: str
    name: str
    scopes: frozenset[str]
    # None: every agent; else the agent ids it may write for and read
    agent_ids: frozenset[str] | None = None
    project: str | None = None
    legacy: bool = False

    def describe(self) -> str:
        bound = "" if self.agent_ids is None else (
            f", bound to project {self.project}" if self.project else f", bound to agents {sorted(self.agent_ids)}")
        return f"key {self.key_id} ({self.name}; scope {', '.join(sorted(self.scopes))}{bound})"

    def allows_agent(self, agent_id: str | None) -> bool:
        return self.agent_ids is None or (agent_id is not None and agent_id in self.agent_ids)


# Who may do everything when no key is configured (the collector then listens on loopback only).
OPEN_ACCESS = Key("none", "no keys configured (loopback only)", frozenset(SCOPES))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_token(token: str) -> str | None:
    """The key id a token names, or None when it is not one of ours."""
    if not token.startswith(_PREFIX):
        return None
    _, _, rest = token[len(_PREFIX):].partition("_")
    key_id = rest[:_KEY_ID_CHARS]
    if len(key_id) != _KEY_ID_CHARS or rest[_KEY_ID_CHARS:_KEY_ID_CHARS + 1] != "_":
        return None
    return key_id


@dataclass
class _Loaded:
    keys: dict[str, tuple[Key, str]] = field(default_factory=dict)  # key id -> (key, digest)
    signature: tuple | None = None


class KeyStore:
    """The keys of a file and the legacy tokens; ``authenticate`` answers per request."""

    def __init__(self, path: Path | None, legacy_tokens: Iterable[str] = ()) -> None:
        self.path = Path(path) if path is not None else None
        self._legacy = [(Key(f"legacy-{number}", f"{LEGACY_TOKENS_ENV} entry {number}", frozenset(SCOPES),
                             legacy=True), digest(token))
                        for number, token in enumerate(legacy_tokens, start=1)]
        self._lock = threading.Lock()
        self._loaded = _Loaded()
        self._checked_at = 0.0
        if self.path is not None and self.path.exists():
            self._loaded = _load(self.path)  # a broken file at start is an error, not a warning

    @property
    def configured(self) -> bool:
        """Whether any key exists (else the collector runs open, on loopback only)."""
        self._maybe_reload()
        return bool(self._legacy) or bool(self._loaded.keys) or (
            self.path is not None and self.path.exists())

    @property
    def legacy_count(self) -> int:
        return len(self._legacy)

    def keys(self) -> list[Key]:
        self._maybe_reload()
        return [key for key, _ in self._loaded.keys.values()] + [key for key, _ in self._legacy]

    def authenticate(self, token: str) -> Key | None:
        """The key ``token`` is, or None. Digests are compared in constant time."""
        self._maybe_reload()
        presented = digest(token)
        key_id = parse_token(token)
        if key_id is not None:
            found = self._loaded.keys.get(key_id)
            # compare against something even for an unknown id, so timing tells nothing
            key, expected = found if found is not None else (None, "0" * 64)
            if hmac.compare_digest(presented, expected) and key is not None:
                return key
            return None
        match = None
        for key, expected in self._legacy:  # every one compared
            if hmac.compare_digest(presented, expected):
                match = key
        return match

    def _maybe_reload(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._checked_at < _RELOAD_EVERY:
            return
        with self._lock:
            if now - self._checked_at < _RELOAD_EVERY:
                return
            self._checked_at = now
            signature = _signature(self.path)
            if signature == self._loaded.signature:
                return
            try:
                self._loaded = _load(self.path) if signature is not None else _Loaded()
            except KeyFileError as error:
                log.error("collector: keeping the keys read before: %s", error)
                self._loaded.signature = signature  # not again until it changes
                return
            log.info("collector: keys file %s read again: %d key(s)", self.path, len(self._loaded.keys))


def _signature(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _load(path: Path) -> _Loaded:
    signature = _signature(path)
    document = read_document(path)
    projects = document["projects"]
    keys: dict[str, tuple[Key, str]] = {}
    for number, record in enumerate(document["keys"], start=1):
        where = f"{path}: keys[{number}]"
        if record.get("revoked_at"):
            continue
        try:
            key_id, key_digest = str(record["key_id"]), str(record["secret_sha256"])
            scopes = frozenset(record["scopes"])
        except (KeyError, TypeError) as error:
            raise KeyFileError(f"{where} lacks {error}: recreate it with `convo-warehouse keys create`") from None
        if not scopes or not scopes <= set(SCOPES):
            raise KeyFileError(f"{where}: scopes must be some of {', '.join(SCOPES)}, got {sorted(scopes)}")
        project = record.get("project")
        agent_ids = record.get("agent_ids")
        if project is not None:
            if project not in projects:
                raise KeyFileError(f"{where}: project {project!r} is not defined: add it with "
                                   f"`convo-warehouse keys project {project} --agent-id ...`")
            agent_ids = projects[project]
        keys[key_id] = (Key(key_id, str(record.get("name") or key_id), scopes,
                            frozenset(agent_ids) if agent_ids is not None else None, project), key_digest)
    return _Loaded(keys, signature)


def read_document(path: Path) -> dict:
    """The keys file as a dict with ``projects`` and ``keys``; ``KeyFileError`` names what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": 1, "projects": {}, "keys": []}
    except (OSError, ValueError) as error:
        raise KeyFileError(f"{path}: cannot read the keys file ({error}); fix it or restore it from a backup") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys", []), list) or not isinstance(
            document.get("projects", {}), dict):
        raise KeyFileError(f"{path}: expected {{\"projects\": {{...}}, \"keys\": [...]}}; "
                           "manage it with `convo-warehouse keys`")
    projects = {}
    for name, spec in document.get("projects", {}).items():
        agent_ids = spec.get("agent_ids") if isinstance(spec, dict) else None
        if not isinstance(agent_ids, list) or not all(isinstance(agent, str) for agent in agent_ids):
            raise KeyFileError(f"{path}: project {name!r} needs a list of agent_ids")
        projects[name] = agent_ids
    return {"version": 1, "projects": projects, "keys": document.get("keys", [])}


def write_document(path: Path, document: dict, file_mode: int) -> None:
    """Replace the file atomically (the collector never reads half of it), owner-only by default."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode)
    try:
        os.fchmod(fd, file_mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": 1, "keys": document["keys"],
                       "projects": {name: {"agent_ids": ids} for name, ids in document["projects"].items()}},
                      handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def create_key(path: Path, name: str, scopes: Iterable[str], agent_ids: Iterable[str] = (),
               project: str | None = None, file_mode: int = 0o600) -> tuple[str, dict]:
    """Add a key to the file; returns (the secret token, shown once; its record)."""
    scopes = frozenset(scopes)
    if not scopes or not scopes <= set(SCOPES):
        raise KeyFileError(f"scopes must be some of {', '.join(SCOPES)}")
    agent_ids = sorted(set(agent_ids))
    if project is not None and agent_ids:
        raise KeyFileError("bind a key to a project or to agent ids, not both")
    document = read_document(path)
    if project is not None and project not in document["projects"]:
        raise KeyFileError(f"project {project!r} is not defined in {path}: add it first with "
                           f"`convo-warehouse keys project {project} --agent-id ...`")
    key_id = secrets.token_hex(_KEY_ID_CHARS // 2)
    token = f"{_PREFIX}{_SCOPE_TAGS[scopes]}_{key_id}_{secrets.token_urlsafe(32)}"
    record = {"key_id": key_id, "name": name, "scopes": sorted(scopes), "project": project,
              "agent_ids": agent_ids or None, "secret_sha256": digest(token),
              "created_at": _now(), "revoked_at": None}
    document["keys"].append(record)
    write_document(path, document, file_mode)
    return token, record


def revoke_key(path: Path, key_id: str, file_mode: int = 0o600) -> dict:
    document = read_document(path)
    for record in document["keys"]:
        if record.get("key_id") == key_id:
            if not record.get("revoked_at"):
                record["revoked_at"] = _now()
                write_document(path, document, file_mode)
            return record
    raise KeyFileError(f"no key {key_id!r} in {path}: `convo-warehouse keys list` shows the ids")


def set_project(path: Path, project: str, agent_ids: Iterable[str], file_mode: int = 0o600) -> None:
    document = read_document(path)
    document["projects"][project] = sorted(set(agent_ids))
    write_document(path, document, file_mode)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def keys_path(explicit: str | os.PathLike | None = None) -> Path:
    """The keys file: the argument, else ``CONVO_COLLECTOR_KEYS_FILE``, else the default."""
    value = explicit or os.environ.get(KEYS_FILE_ENV) or DEFAULT_KEYS_FILE
    path = Path(value)
    return path if path.is_absolute() else Path.cwd() / path
