"""Mask personal data in transcripts before they leave for an LLM endpoint or reach a screen.

Kinds masked, each with a placeholder in the style the real datasets use:

- ``#NAME#``: a person's name right after a self-introduction ("my name is
  Dana Whitfield", "this is Dana Whitfield", "I'm Dana Whitfield", "I am
  called ..."). "my name is" takes one to three words in any case; "this is"
  and "I'm" / "I am" need two capitalised words (so "this is great" and "I'm
  Fine" stay). ``mask_transcript`` also masks every later mention of those
  names in the same transcript ("Hi Dana, ...").
- ``#ADDRESS#``: a street address: a house number, one to four words and a
  street type ("5953 Maple Grove St", "12 High Street, Flat 3"), or a
  European form ("Hauptstrasse 12", "12 rue de la Paix").
- ``#EMAIL#``, ``#IBAN#``, ``#CARD#`` (13-19 digits, spaces or dashes
  allowed), ``#PHONENUMBER#`` (8+ digits, optionally with +, spaces, dots,
  dashes, brackets).

Order, booking, invoice, ticket, tracking and reference numbers are kept
(they are not personal data and the LLM needs them to read the conversation):
a number right after such a word ("order 112-4481920", "booking ref:
88123456") is left as is. Otherwise masking errs on the side of hiding: a
long bare number may be masked as a phone number.

Text longer than ``MAX_MASKED_CHARS`` is cut before masking (and says so), so
the cost of masking one message is bounded whatever its size. Every pattern
starts at an anchor (a word boundary or a look-behind), so masking is linear
in the text's length.

Regular expressions, not a library: presidio-analyzer's pattern recognizers
(no NLP model can be downloaded here) cover emails, cards, IBANs and phones
but have no person or street-address recognizer without a spaCy model, so on
the kinds this module exists for they find nothing (docs/quality.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# Longer messages are cut to this many characters before masking; the cut is
# marked in the text. Big enough for any real chat message; small enough that
# masking a pasted log or a hostile 1 MB message takes milliseconds.
MAX_MASKED_CHARS = 10_000

# The local part may not start in the middle of a run of its own characters:
# without the look-behind, each of n starting positions scans to the run's end.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\w])(?:\d[ \-]?){12,18}\d(?![\w])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().\-]{0,2}\d){7,14}(?![\w])")

# A number right after one of these words (and an optional "number", "no.", "#", ":") is an identifier to keep.
KEPT_NUMBER_CONTEXT = re.compile(
    r"(?i)\b(?:order|orders|booking|reservation|invoice|ticket|tracking|reference|ref|confirmation|case|"
    r"return|parcel|shipment|transaction|receipt|contract|policy|account)\s*"
    r"(?:number|num|no\.?|nr\.?|id|code)?\s*(?:is|was)?\s*[:#]?\s*$"
)

_CAPITALISED = r"[A-Z](?:[a-z]+(?:[A-Z][a-z]+)?|'[A-Z][a-z]+)(?:-[A-Z][a-z]+)?"  # Dana, McKay, O'Neill, Smith-Jones
_ANY_WORD = r"[A-Za-z][A-Za-z'\-]+"
# Words that end a lower-case name after "my name is" ("my name is dana and i ...").
_NOT_NAMES = {
    "and", "but", "i", "im", "from", "with", "here", "calling", "writing", "the", "a", "an", "on", "in", "at",
    "is", "was", "my", "please", "thanks", "thank", "hi", "hello", "not", "also", "just", "for", "to", "of",
}
NAME_AFTER_MY_NAME_IS = re.compile(
    r"(?i:\b(?:my\s+name\s+is|my\s+name's|name\s+is|i\s+am\s+called|i'm\s+called)\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
NAME_AFTER_INTRO = re.compile(
    r"(?i:\b(?:this\s+is|i'm|i’m|im|i\s+am)\s+)"
    rf"(?P<name>{_CAPITALISED}(?:\s+{_CAPITALISED}){{1,2}})\b"
)

_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|way|court|ct|place|pl|terrace|close|"
    r"crescent|cres|highway|hwy|parkway|pkwy|square|sq|circle|cir|trail|row|grove|gardens|walk"
)
# Words that never belong to a street name ("2 parcels are on the way" is no address).
_FILLER_WORDS = (
    r"the|on|in|at|a|an|is|are|was|were|of|to|for|my|your|our|and|or|by|from|with|it|its|be|been|has|have|"
    r"had|more|days|hours|minutes|weeks|times|items|parcels|orders"
)
STREET_ADDRESS = re.compile(
    r"(?i)\b\d{1,6}[a-z]?,?\s+(?:(?!(?:" + _FILLER_WORDS + r")\b)[a-z][a-z'.\-]*\s+){1,4}"
    rf"(?:{_STREET_TYPES})\b\.?"
    r"(?:,?\s*(?:apt|apartment|flat|suite|unit|floor|fl)\.?\s*#?\s*\w+)?"
)
EUROPEAN_ADDRESS = re.compile(
    r"(?i)\b(?:\d{1,5}[a-z]?,?\s+(?:rue|avenue|boulevard|calle|avenida|via|viale|rua|piazza|plaza|place)"
    r"(?:\s+[a-zà-ÿ'\-]+){1,4}"
    r"|[a-zäöüß\-]+(?:strasse|straße|str\.|weg|gasse|platz|allee|laan|straat|gracht|vej|gatan|gate)\s+\d{1,5}[a-z]?)\b"
)


def mask_pii(text: str | None, names: Iterable[str] = ()) -> str:
    """The text with self-introduced names (and ``names``), addresses, emails, IBANs, cards and phones masked."""
    if not text:
        return ""
    text, cut_note = _cut(text)
    text = EMAIL.sub("#EMAIL#", text)
    text = IBAN.sub("#IBAN#", text)
    text = STREET_ADDRESS.sub("#ADDRESS#", text)
    text = EUROPEAN_ADDRESS.sub("#ADDRESS#", text)
    text = CARD.sub(_card_or_phone, text)
    text = PHONE.sub(_phone_unless_identifier, text)
    found = set(introduced_names(text)) | {name for name in names if name}
    text = NAME_AFTER_MY_NAME_IS.sub(_mask_name_group, text)
    text = NAME_AFTER_INTRO.sub(_mask_name_group, text)
    return _mask_words(text, found) + cut_note


def mask_transcript(messages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(role, text) pairs masked; a name introduced anywhere is masked wherever it appears in the transcript."""
    names: set[str] = set()
    for _, content in messages:
        names.update(introduced_names(_cut(content or "")[0]))
    return [(role, mask_pii(content, names)) for role, content in messages]


def _cut(text: str) -> tuple[str, str]:
    if len(text) <= MAX_MASKED_CHARS:
        return text, ""
    return text[:MAX_MASKED_CHARS], f" [{len(text) - MAX_MASKED_CHARS:,} more characters not shown]"


def introduced_names(text: str) -> list[str]:
    """The words of names that follow a self-introduction in ``text`` ("Dana", "Whitfield")."""
    words = []
    for pattern in (NAME_AFTER_MY_NAME_IS, NAME_AFTER_INTRO):
        for match in pattern.finditer(text):
            words.extend(_name_words(match.group("name")))
    return words


def _name_words(candidate: str) -> list[str]:
    words = []
    for word in candidate.split():
        if word.lower() in _NOT_NAMES:
            break
        words.append(word)
    return words


def _mask_name_group(match: re.Match) -> str:
    name = match.group("name")
    kept = _name_words(name)
    if not kept:
        return match.group(0)
    end = 0
    for word in kept:
        end = name.index(word, end) + len(word)
    prefix = match.group(0)[: match.start("name") - match.start(0)]
    return prefix + "#NAME#" + name[end:]


def _mask_words(text: str, words: set[str]) -> str:
    words = {word for word in words if len(word) >= 2}
    if not words:
        return text
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    text = pattern.sub("#NAME#", text)
    return re.sub(r"#NAME#(?:\s+#NAME#)+", "#NAME#", text)


def _card_or_phone(match: re.Match) -> str:
    if _follows_identifier_word(match):
        return match.group(0)
    digits = re.sub(r"\D", "", match.group(0))
    return "#CARD#" if 13 <= len(digits) <= 19 else match.group(0)


def _phone_unless_identifier(match: re.Match) -> str:
    return match.group(0) if _follows_identifier_word(match) else "#PHONENUMBER#"


def _follows_identifier_word(match: re.Match) -> bool:
    before = match.string[max(0, match.start() - 40) : match.start()]
    return bool(KEPT_NUMBER_CONTEXT.search(before))
