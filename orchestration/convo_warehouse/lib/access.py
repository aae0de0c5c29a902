"""Who may reach a server we start: loopback only, unless it is protected; never a foreign site.

Every server of the project (the collector, the read API, the dashboard)
follows one rule: bound to a loopback address it may run without
authentication; bound anywhere else it refuses to start unless a secret is
configured (bearer tokens, or the dashboard's password). Secrets are compared
in constant time.

Browsers: the collector and the read API serve only the ``Host`` names they
are configured for (loopback names by default: a DNS-rebinding page reaches
neither), and refuse what a browser marks as coming from another site
(``cross_site_refusal``: an ``Origin`` not listed, or ``Sec-Fetch-Site:
cross-site``), so a page the user visits cannot read or write through them.
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


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def default_hosts(host: str) -> tuple[str, ...]:
    """The Host header values a server on ``host`` serves unless told otherwise: loopback names on
    loopback (DNS rebinding), any elsewhere (a key or token is required there)."""
    return LOOPBACK_HOSTS if is_loopback(host) else ("*",)


def cross_site_refusal(headers, allowed_origins: tuple[str, ...]) -> str | None:
    """Why a request a browser made for another site is refused, or None. Browsers add ``Origin``
    to cross-origin requests and ``Sec-Fetch-Site`` to all; SDKs, exporters and curl send neither."""
    origin = headers.get("origin")
    if origin is not None and origin not in allowed_origins:
        return (f"requests from origin {origin[:200]} are refused (list the origin with --allowed-origin "
                "to allow it)")
    if origin is None and headers.get("sec-fetch-site") == "cross-site":
        return "cross-site requests are refused (a page of another site asked for this)"
    return None


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
