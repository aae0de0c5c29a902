"""Request bodies -> batch items, for the collector's worker threads (pure: no I/O).

A body that cannot be read at all is a ``BodyError`` (the app answers 400).
Inside a readable batch, an item that cannot be decoded on its own (nested
deeper than Python's JSON reader allows) becomes an ``Unreadable`` item, which
the collector answers ``rejected`` (``unreadable_line``) while the other items
of the batch are judged as usual: one poisoned event never costs its batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any


class BodyError(ValueError):
    """The request body as a whole is not a batch (the answer is 400 with this message)."""


@dataclass(frozen=True)
class Unreadable:
    """One batch item that could not be decoded: its text (cut to a bound) and why."""

    text: str
    reason: str


_KEEP_TEXT = 4096  # characters of an unreadable item kept in the rejects file


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """A whole body as JSON (NaN and Infinity refused); ``BodyError`` if it is not JSON."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BodyError(f"request body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise BodyError("request body is nested deeper than the collector reads") from error


def decode_event_batch(body: bytes, max_events: int) -> list:
    """The items of ``{"events": [...]}`` or ``[...]``; too deep an item is ``Unreadable``.

    Raises ``BodyError`` (400) for a body that is not a batch, and
    ``TooManyEvents`` (413) above ``max_events``.
    """
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BodyError(f"request body is not valid JSON: {error}") from error
    except RecursionError:
        items = _decode_items_one_by_one(body)
    else:
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise BodyError('expected a JSON array of events or {"events": [...]}')
    if len(items) > max_events:
        raise TooManyEvents(f"{len(items)} events in one request; at most {max_events}: split the batch")
    return items


class TooManyEvents(ValueError):
    """More events in one request than the collector takes (the answer is 413)."""


# --- the slow path: a batch with an item too deep for json.loads -----------------------

_WS = re.compile(r"[ \t\n\r]*")
_STRUCTURE = re.compile(r'["\[\]{}]')
_SCALAR_END = re.compile(r"[,\]} \t\n\r]")


def _decode_items_one_by_one(body: bytes) -> list:
    """Split the batch's array into items by scanning, then decode each on its own."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(f"request body is not valid JSON: {error}") from error
    position = _WS.match(text, 0).end()
    if text.startswith("{", position):
        position = _events_value_start(text, position)
    if not text.startswith("[", position):
        raise BodyError('expected a JSON array of events or {"events": [...]}')
    items = []
    for start, end in _array_items(text, position):
        item_text = text[start:end]
        try:
            items.append(json.loads(item_text, parse_constant=_reject_constant))
        except RecursionError:
            items.append(Unreadable(item_text[:_KEEP_TEXT],
                                    "unreadable line: nested deeper than the collector reads"))
        except ValueError as error:
            raise BodyError(f"request body is not valid JSON: {error}") from error
    return items


def _events_value_start(text: str, position: int) -> int:
    """Where the value of the top-level ``"events"`` key starts."""
    position += 1
    while True:
        position = _WS.match(text, position).end()
        if not text.startswith('"', position):
            raise BodyError('expected a JSON array of events or {"events": [...]}')
        key, position = _string(text, position)
        position = _WS.match(text, position).end()
        if not text.startswith(":", position):
            raise BodyError("request body is not valid JSON: expected ':' after a key")
        position = _WS.match(text, position + 1).end()
        if key == "events":
            return position
        position = _WS.match(text, _skip_value(text, position)).end()
        if not text.startswith(",", position):
            raise BodyError('expected a JSON array of events or {"events": [...]}')


def _array_items(text: str, position: int):
    """(start, end) of each item of the array starting at ``position`` (a ``[``)."""
    position = _WS.match(text, position + 1).end()
    if text.startswith("]", position):
        return
    while True:
        end = _skip_value(text, position)
        yield position, end
        position = _WS.match(text, end).end()
        if text.startswith("]", position):
            return
        if not text.startswith(",", position):
            raise BodyError(f"request body is not valid JSON: expected ',' or ']' at character {position}")
        position = _WS.match(text, position + 1).end()


def _string(text: str, position: int) -> tuple[str, int]:
    try:
        return scanstring(text, position + 1)
    except ValueError as error:
        raise BodyError(f"request body is not valid JSON: {error}") from error


def _skip_value(text: str, position: int) -> int:
    """The end of the JSON value starting at ``position``, without recursion."""
    if position >= len(text):
        raise BodyError("request body is not valid JSON: it ends inside a value")
    first = text[position]
    if first == '"':
        return _string(text, position)[1]
    if first not in "[{":
        match = _SCALAR_END.search(text, position)
        end = match.start() if match else len(text)
        if end == position:
            raise BodyError(f"request body is not valid JSON: unexpected {first!r} at character {position}")
        return end
    depth = 0
    while True:
        match = _STRUCTURE.search(text, position)
        if match is None:
            raise BodyError("request body is not valid JSON: an array or object is never closed")
        char = match.group()
        if char == '"':
            position = _string(text, match.start())[1]
            continue
        depth += 1 if char in "[{" else -1
        position = match.end()
        if depth == 0:
            return position
