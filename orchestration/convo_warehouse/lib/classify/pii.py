"""Mask personal data in transcripts before they leave for an LLM endpoint.

Emails, card-like numbers (13-19 digits, spaces or dashes allowed), IBANs and
phone numbers (8+ digits, optionally with +, spaces, dots, dashes, brackets)
become placeholders in the style the real datasets use (``#EMAIL#``, ...).
Masking errs on the side of hiding: a long order number may be masked as a
phone number, which costs the LLM little.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\w])(?:\d[ \-]?){12,18}\d(?![\w])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().\-]{0,2}\d){7,14}(?![\w])")


def mask_pii(text: str | None) -> str:
    """The text with emails, card-like numbers, IBANs and phone numbers replaced."""
    if not text:
        return ""
    text = EMAIL.sub("#EMAIL#", text)
    text = IBAN.sub("#IBAN#", text)
    text = CARD.sub(_card_or_phone, text)
    text = PHONE.sub("#PHONENUMBER#", text)
    return text


def _card_or_phone(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "#CARD#" if 13 <= len(digits) <= 19 else match.group(0)
