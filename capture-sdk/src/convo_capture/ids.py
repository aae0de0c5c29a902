"""Event ids and timestamps assigned at capture time.

Event ids are UUID version 7 (RFC 9562): 48 bits of Unix time in
milliseconds, then random bits, so ids sort by creation time and never
collide across processes. Python 3.11 has no ``uuid.uuid7``; this is ours.
Within one millisecond a 12-bit counter (seeded randomly) keeps ids of one
process strictly increasing.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timezone

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(now_ns: int | None = None) -> str:
    """A new time-ordered UUIDv7 as its canonical 36-character text."""
    global _last_ms, _counter
    unix_ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    random_bytes = os.urandom(10)
    with _lock:
        if unix_ms > _last_ms:
            _last_ms = unix_ms
            # start low in the 12-bit space so a burst rarely overflows it
            _counter = int.from_bytes(random_bytes[:2], "big") & 0x1FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                # more than ~3,500 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            unix_ms = _last_ms
        counter = _counter
    rand_b = int.from_bytes(random_bytes[2:], "big") & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def uuid7_time(event_id: str) -> datetime:
    """The creation time encoded in a UUIDv7 (UTC, millisecond precision)."""
    unix_ms = uuid.UUID(event_id).int >> 80
    return datetime.fromtimestamp(unix_ms / 1000, timezone.utc)


def utc_timestamp(value: datetime | float | int | None = None) -> str:
    """ISO-8601 UTC text with microseconds and ``Z``, as the contract accepts.

    ``value``: None (now), an aware datetime (converted to timezone.utc), a naive
    datetime (taken as UTC, as the contract does), or epoch seconds.
    """
    if value is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(value, datetime):
        moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    else:
        moment = datetime.fromtimestamp(float(value), timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
