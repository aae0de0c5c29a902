"""``POST /api/track-interaction``: a chat widget's "the user could talk to the agent" call.

The widget sends ``{"conversation_id": ..., "customer_id": ..., "page_url": ...}`` and,
optionally, the fields of its initialize-conversation call
(``customer_ip_address``, ``device``, ``source``, ``language``,
``environment`` production|development, ``metadata``). The collector turns
it into one ``interaction_initialized`` event (the contract's type) and
stores it like any event of ``POST /v1/events``. What the caller did not
send, the server fills in:

- ``device`` (mobile, tablet, desktop), ``browser`` and ``os`` from the
  ``User-Agent`` header, read by ua-parser (the maintained port of
  Browserscope's parser, with its packaged rules); bots and unknown clients
  get no device;
- ``customer_ip_address``: the client's address (the peer's, or behind a
  trusted proxy the last untrusted hop of ``X-Forwarded-For``), anonymised by
  default: IPv4 to its /24, IPv6 to its /48 (an address the caller sends is
  anonymised the same way);
- ``metadata.user_agent`` and ``metadata.widget_loaded = true``.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

ENVIRONMENTS = ("production", "development")
TEXT_FIELDS = {"conversation_id": 256, "customer_id": 256, "page_url": 2048, "device": 64, "source": 128,
               "language": 64, "environment": 32, "customer_ip_address": 64}
MAX_METADATA_BYTES = 16 * 1024
MAX_USER_AGENT_CHARS = 1024
# ua-parser's operating systems of phones and tablets (what is not one of them and has a browser is a desktop)
_MOBILE_OS = frozenset({"iOS", "iPadOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS",
                        "Symbian OS", "Tizen", "HarmonyOS", "Sailfish"})


class InteractionError(ValueError):
    """A body the endpoint cannot take; the message names the field."""


@dataclass(frozen=True)
class InteractionSettings:
    keep_full_ip: bool = False  # CONVO_TRACK_FULL_IP=1
    # networks whose X-Forwarded-For is believed (the reverse proxies in front of the collector)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @staticmethod
    def networks(values) -> tuple:
        networks = []
        for value in values:
            try:
                networks.append(ipaddress.ip_network(value.strip(), strict=False))
            except ValueError as error:
                raise ValueError(f"trusted proxy {value!r} is no address or network ({error}): "
                                 "give addresses or CIDR networks such as 10.0.0.0/8") from None
        return tuple(networks)


def _trusted(address: str, settings: InteractionSettings) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxies)


def client_address(peer: str | None, forwarded_for: str | None, settings: InteractionSettings) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    ``X-Forwarded-For`` hop that is not one (a client can write anything in the header; only what
    our proxies appended counts)."""
    address = peer
    if forwarded_for and peer is not None and _trusted(peer, settings):
        for hop in reversed([hop.strip() for hop in forwarded_for.split(",") if hop.strip()]):
            address = hop
            if not _trusted(hop, settings):
                break
    return address


def anonymise(address: str) -> str:
    """IPv4 to its /24 (203.0.113.0), IPv6 to its /48 (2001:db8:1::)."""
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


@lru_cache(maxsize=4096)  # widgets repeat a few thousand User-Agent strings
def parse_user_agent(user_agent: str) -> tuple[str | None, str | None, str | None]:
    """(device type, browser, os) of a User-Agent header; None where unknown."""
    from ua_parser import parse

    result = parse(user_agent[:MAX_USER_AGENT_CHARS])
    browser = result.user_agent.family if result.user_agent and result.user_agent.family != "Other" else None
    os_name = result.os.family if result.os and result.os.family != "Other" else None
    device = result.device
    if device is not None and "Spider" in (device.family, device.brand):
        kind = None  # a crawler: no device
    elif device is not None and (device.family == "iPad" or "Tablet" in (device.brand or "")
                                 or "Tablet" in device.family or os_name == "iPadOS"):
        kind = "tablet"
    elif os_name in _MOBILE_OS or (device is not None and device.family not in ("Other", "Mac")):
        kind = "mobile"
    elif browser is not None or os_name is not None:
        kind = "desktop"
    else:
        kind = None
    return kind, browser, os_name


def interaction_event(body, user_agent: str | None, address: str | None, settings: InteractionSettings,
                      now: datetime | None = None) -> tuple[dict, list[str]]:
    """The ``interaction_initialized`` event of one call, and the body's fields that were ignored."""
    if not isinstance(body, dict):
        raise InteractionError('expected a JSON object such as {"conversation_id": "c-1"}')
    for name, limit in TEXT_FIELDS.items():
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InteractionError(f"{name} must be a string")
        if value is not None and len(value) > limit:
            raise InteractionError(f"{name} is {len(value):,} characters long; at most {limit:,}")
    conversation_id = (body.get("conversation_id") or "").strip()
    if not conversation_id:
        raise InteractionError("conversation_id is required")
    environment = body.get("environment")
    if environment is not None and environment not in ENVIRONMENTS:
        raise InteractionError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InteractionError("metadata must be a JSON object")
    metadata = dict(metadata or {})
    if len(json.dumps(metadata, ensure_ascii=False)) > MAX_METADATA_BYTES:
        raise InteractionError(f"metadata is over {MAX_METADATA_BYTES:,} bytes")
    ip = body.get("customer_ip_address") or address
    if ip is not None:
        try:
            ip = ip if settings.keep_full_ip else anonymise(ip)
        except ValueError:
            raise InteractionError(f"customer_ip_address {ip!r} is no IP address") from None
    device, browser, os_name = parse_user_agent(user_agent) if user_agent else (None, None, None)
    if user_agent:
        metadata["user_agent"] = user_agent[:MAX_USER_AGENT_CHARS]
    metadata["widget_loaded"] = True
    properties = {
        "page_url": body.get("page_url"),
        "device": body.get("device") or device,
        "browser": browser,
        "os": os_name,
        "customer_ip_address": ip,
        "source": body.get("source"),
        "language": body.get("language"),
        "environment": environment,
        "metadata": metadata,
    }
    moment = now or datetime.now(UTC)
    event = {
        "event_id": f"interaction-{uuid.uuid4()}",
        "conversation_id": conversation_id,
        "event_type": "interaction_initialized",
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "channel": "web",
        "properties": {name: value for name, value in properties.items() if value is not None},
    }
    if body.get("customer_id"):
        event["user_id"] = body["customer_id"]
    ignored = sorted(set(body) - set(TEXT_FIELDS) - {"metadata"})
    return event, ignored
