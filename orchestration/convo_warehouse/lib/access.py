"""Who may reach a server we start: loopback only, unless it is protected.

Every server of the project (the collector, the read API, the dashboard)
follows one rule: bound to a loopback address it may run without
authentication; bound anywhere else it refuses to start unless a secret is
configured (bearer tokens, or the dashboard's password). Secrets are compared
in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tokens_from_env(name: str) -> tuple[str, ...]:
    """The comma-separated secrets of environment variable ``name`` (blanks ignored)."""
    return tuple(token.strip() for token in os.environ.get(name, "").split(",") if token.strip())


def matches_any(secret: str, known: tuple[str, ...]) -> bool:
    """``secret`` equals one of ``known``, compared in constant time (each one compared)."""
    presented = secret.encode()
    return any([hmac.compare_digest(presented, candidate.encode()) for candidate in known])


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ('' when there is none)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def refusal(host: str, protected: bool, setting: str) -> str | None:
    """Why a server must not start on ``host`` (None when it may)."""
    if protected or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without authentication: set {setting}, or listen on 127.0.0.1 "
        "(a loopback address needs none)."
    )
