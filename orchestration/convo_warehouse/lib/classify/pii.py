"""Mask personal data in transcripts before they leave for an LLM endpoint or reach a screen.

Kinds masked, each with a placeholder in the style the real datasets use:

- ``#NAME#``: a person's name
  - after "my name is" / "my name's" / "I am called" (one to three words, any case);
  - after "this is" / "I'm" / "I am": two or three words (capitalised, or in
    lower case when none is a common word: "i'm dana whitfield"), or one word
    that is no common word and ends the clause ("This is Dana", "i'm dana from
    billing");
  - in a sign-off at the end of a line ("Thanks, Dana Whitfield", "Regards, dana");
  - after a relation ("my husband John Smith", "my daughter, Amy");
  - after "call me" ("call me Dana"), before "here" ("Dana here", "Hey,
    Marta Kowalczyk here");
  - a third party after a verb of contact ("I spoke to Sarah Connor", "ask
    Peter Parker", "an agent called Mike"): capitalised words only;
  - after a title ("Mr. Smith", "Ms Whitfield", "Kind regards, Dr Okafor"):
    the name, not the title;
  ``mask_transcript`` also masks every later mention of those names in the
  same transcript ("Hi Dana, ...").
- ``#ADDRESS#``: a street address: a house number, one to four words and a
  street type ("5953 Maple Grove St", "12 High Street, Flat 3"), or a
  European form ("Hauptstrasse 12", "12 rue de la Paix").
- ``#EMAIL#``; ``#IP_ADDRESS#`` (IPv4 and IPv6, checked by ``ipaddress``);
  ``#IBAN#`` (in capitals, or in any case when its check digits are right);
  ``#ADDRESS#`` also for a UK postcode in capitals ("HU5 3QT"), or in any
  case after "postcode" / "post code" / "zip" / an address ("hu5 3qt");
  ``#EMAIL#`` also for an address written to dodge filters ("dana at example
  dot com", "dana [at] example [dot] com");
  ``#PASSPORT#`` (6-9 letters and digits after "passport"); ``#NATIONAL_ID#``
  (a UK national insurance number, "QQ 12 34 56 C", or a US social security
  number, "123-45-6789", or 9 digits after "SSN" / "social security");
  ``#CARD#`` (13-19 digits, spaces or dashes allowed); ``#DATE#`` (a full date
  whose year is at least ten years back, so a birth date, or any date after
  "born" / "date of birth" / "DOB"); ``#PHONENUMBER#`` (8+ digits, optionally
  with +, spaces, dots, dashes, brackets).

"Common words" (which are never names) are the function and state words
below plus every word of VADER's sentiment lexicon (``vadersentiment``, a
dependency already), so "I'm Fine", "this is ridiculous" and "Thanks, great"
stay.

Order, booking, invoice, ticket, tracking and reference numbers are kept
(they are not personal data and the LLM needs them to read the conversation):
a number right after such a word ("order 112-4481920", "booking ref:
88123456") is left as is, and so are version and build numbers and dates that
are not taken for birth dates. After "account" or "policy" a number is kept too,
unless it is a valid card number (Luhn). Otherwise masking errs on the side of
hiding: a long bare number may be masked as a phone number.

Text longer than ``MAX_MASKED_CHARS`` is cut before masking (and says so), so
the cost of masking one message is bounded whatever its size. Every pattern
starts at an anchor (a word boundary or a look-behind) and repeats a bounded
number of times, so masking is linear in the text's length.

Regular expressions, not a library: presidio-analyzer's pattern recognizers
(no NLP model can be downloaded here) cover emails, cards, IBANs and phones
but have no person or street-address recognizer without a spaCy model, so on
the kinds this module exists for they find nothing (docs/quality.md). What it
still misses, measured on a labelled set: docs/quality.md#pii-masking-libclassifypiipy.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

# Longer messages are cut to this many characters before masking; the cut is
# marked in the text. Big enough for any real chat message; small enough that
# masking a pasted log or a hostile 1 MB message takes milliseconds.
MAX_MASKED_CHARS = 10_000

# The local part may not start in the middle of a run of its own characters:
# without the look-behind, each of n starting positions scans to the run's end.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\w])(?:\d[ \-]?){12,18}\d(?![\w])")
IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# not inside an identifier ("INV-2026-00913", "SKU/12345678")
PHONE = re.compile(r"(?<![\w+\-/])\+?\(?\d(?:[\s().\-]{0,2}\d){7,14}(?![\w])")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
DATE = re.compile(
    r"(?i)\b(?:"
    r"(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<year>\d{4}|\d{2})"
    r"|(?P<iso_year>\d{4})-(?P<iso_month>\d{2})-(?P<iso_day>\d{2})"
    rf"|(?:{_MONTHS})\.?\s+(?P<day1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year1>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\.?,?\s+(?P<year2>\d{{4}})"
    r")\b"
)
BIRTH_CONTEXT = re.compile(r"(?i)\b(?:born|birthday|birth\s*date|date\s+of\s+birth|d\.?o\.?b)\b\W{0,3}(?:\w+\W{1,3}){0,3}$")
# A date in a year at least this many years back is taken for a birth date.
_BIRTH_YEAR_MIN_AGE = 10

# A number right after one of these words (and an optional "number", "no.", "#", ":") is an identifier to keep.
KEPT_NUMBER_CONTEXT = re.compile(
    r"(?i)\b(?P<word>order|orders|booking|reservation|invoice|ticket|tracking|reference|ref|confirmation|case|"
    r"return|parcel|shipment|transaction|receipt|contract|policy|account|version|build)\s*"
    r"(?:number|num|no\.?|nr\.?|id|code)?\s*(?:is|was)?\s*[:#]?\s*$"
)
# After these words a card-length number that passes the Luhn check is still a card.
_CARD_STILL_AFTER = {"account", "policy"}

_CAPITALISED = r"[A-Z](?:[a-z]+(?:[A-Z][a-z]+)?|'[A-Z][a-z]+)(?:-[A-Z][a-z]+)?"  # Dana, McKay, O'Neill, Smith-Jones
_ANY_WORD = r"[A-Za-z][A-Za-z'\-]+"
# Words that end a name after "my name is" ("my name is dana and i ...") and are never names.
_FUNCTION_WORDS = {
    "and", "but", "i", "im", "from", "with", "here", "calling", "writing", "the", "a", "an", "on", "in", "at",
    "is", "was", "my", "please", "thanks", "thank", "hi", "hello", "not", "also", "just", "for", "to", "of",
    "it", "its", "this", "that", "these", "those", "there", "what", "why", "how", "where", "when", "who",
    "which", "your", "our", "their", "his", "her", "him", "me", "you", "we", "they", "she", "he", "us", "them",
    "so", "very", "too", "really", "still", "already", "again", "now", "then", "only", "even", "quite",
    "pretty", "super", "totally", "completely", "absolutely", "extremely", "seriously", "honestly", "literally",
    "actually", "basically", "probably", "definitely", "currently", "finally", "about", "regarding", "re", "as",
    "if", "or", "no", "yes", "yeah", "ok", "okay", "sir", "madam", "maam", "all", "any", "some", "one", "two",
    "new", "back", "out", "up", "down", "off", "over", "done", "gone", "being", "trying", "looking", "having",
    "getting", "waiting", "going", "using", "asking", "wondering", "hoping", "contacting", "reaching",
    "following", "checking", "sending", "typing", "chatting", "talking", "doing", "saying", "telling",
    "speaking", "unable", "able", "aware", "unsure", "stuck", "lost", "locked", "confused", "frustrated",
    "annoyed", "tired", "busy", "afraid", "sorry", "sure", "fine", "good", "well", "glad", "ready", "late",
    "early", "away", "home", "online", "logged", "signed", "charged", "billed", "taking", "unacceptable",
    "urgent", "weird", "strange", "odd", "correct", "wrong", "right", "true", "false", "same", "different",
    "another", "other", "more", "less", "much", "many", "customer", "client", "user", "member", "owner",
    "manager", "agent", "support", "team", "bot", "human", "person", "account", "order", "regards", "best",
    "cheers", "bye", "goodbye", "everyone", "guys", "folks", "anyway", "tho", "though", "bro", "mate", "dear",
    "hey", "morning", "afternoon", "evening", "night", "today", "tomorrow", "yesterday", "help", "need", "want",
    "got", "get", "have", "had", "has", "do", "does", "did", "am", "are", "were", "be", "been", "will", "would",
    "can", "could", "should", "may", "might", "must", "shall", "let", "lets", "see", "ll", "ve", "d", "s", "t",
    "first", "second", "third", "last", "next", "normal", "normally", "always", "never", "once", "sometimes",
    "often", "usually", "ever", "soon", "later", "almost", "nearly", "maybe", "perhaps", "around",
    # words of forms and sentences that start with a capital ("Email Address:", "Contact Information
    # Name:", "Because here", "email After that"), and titles ("Hello Mr. Agent")
    "address", "information", "name", "names", "details", "number", "form", "service", "department", "desk",
    "center", "centre", "street", "email", "phone", "telephone", "username", "password", "code", "because",
    "everything", "nothing", "something", "anything", "someone", "anyone", "nobody", "somebody", "anybody",
    "people", "after", "before", "while", "since", "until", "mr", "mrs", "ms", "mx", "dr", "prof", "miss",
    # days and months are capitalised but never names here ("it's Monday", "ask Friday's shift")
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "june", "july", "august", "september", "october", "november", "december",
}
NAME_AFTER_MY_NAME_IS = re.compile(
    r"(?i:\b(?:my\s+name\s+is|my\s+name's|name\s+is|i\s+am\s+called|i'm\s+called)\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
NAME_AFTER_INTRO = re.compile(
    r"(?i:\b(?:this\s+is|i'm|i’m|im|i\s+am)\s+)"
    rf"(?P<name>{_CAPITALISED}(?:\s+{_CAPITALISED}){{1,2}})\b"
)
# Lower-case or one-word introductions: the candidate words are checked against common words.
NAME_AFTER_INTRO_ANY_CASE = re.compile(
    r"(?i:\b(?:this\s+is|i'm|i’m|im|i\s+am)\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
# A name alone on the rest of its line after a sign-off; "best" and "regards" need a comma
# (or a line break) so that "the best thing" stays.
SIGN_OFF = re.compile(
    r"(?i:\b(?:(?:thanks|thank\s+you|thx|many\s+thanks)\s*[,!.:\-–—]*\s*"
    r"|(?:best|kind|warm)\s+regards\s*[,!.:\-–—]*\s*"
    r"|(?:regards|best\s+wishes|best|cheers|sincerely|yours\s+truly)(?:\s*[,!.:\-–—]+\s*|\s*\n\s*)))"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}\.?){{0,2}})\s*[.!]*\s*(?=\n|$)"
)
_RELATIONS = (
    r"husband|wife|partner|spouse|son|daughter|child|kid|mother|mom|mum|father|dad|brother|sister|"
    r"grandmother|grandfather|grandma|grandpa|grandson|granddaughter|aunt|uncle|cousin|nephew|niece|"
    r"friend|boyfriend|girlfriend|fiance|fiancee|fiancé|fiancée|colleague|coworker|co-worker|boss|manager|"
    r"assistant|neighbour|neighbor|landlord|landlady|tenant|roommate|flatmate|employee|caregiver|carer"
)
NAME_AFTER_RELATION = re.compile(
    rf"(?i:\b(?:my|our)\s+(?:{_RELATIONS})\s*,?\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
NAME_AFTER_CALL_ME = re.compile(
    r"(?i:\b(?:call\s+me|you\s+can\s+call\s+me|people\s+call\s+me)\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
# "it's Dana again", "hi it is Dana from 4B": only a name that ends the clause (not "it's Monday morning")
NAME_AFTER_ITS = re.compile(
    r"(?i:\b(?:it's|it’s|it\s+is)\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
# "Dana here", "Hey, Marta Kowalczyk here": at the start of the text or of a sentence, after a greeting.
NAME_HERE = re.compile(
    r"(?:^|(?<=[.!?\n])\s*|(?i:\b(?:hi|hello|hey|morning|evening|afternoon|ok|okay)\b)[,!.]?\s+)"
    rf"(?P<name>{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})\s+here\b"
)
# Someone else, named after a verb of contact: capitalised words only ("spoke to Sarah Connor").
_CONTACT_VERBS = (
    r"spoke|speak|speaking|talked|talk|talking|chatted|chatting|dealt|dealing|spoken|"
    r"ask|asked|asking|tell|told|contact|contacted|email|emailed|message|messaged|phone|phoned|ring|rang|"
    r"cc|forward(?:ed)?\s+(?:it|this)\s+to|transferred\s+(?:me\s+)?to|put\s+me\s+through\s+to|"
    r"named|called|name\s+of"
)
NAME_AFTER_CONTACT = re.compile(
    rf"(?i:\b(?:{_CONTACT_VERBS})(?:\s+(?:to|with))?\s+(?:(?:an?|the|your|my)\s+(?:agent|colleague|rep|"
    rf"representative|manager|supervisor|guy|lady|woman|man|person)\s+(?:called|named)?\s*)?)"
    rf"(?P<name>{_CAPITALISED}(?:\s+{_CAPITALISED}){{0,2}})\b"
)
# A greeting's name at the start of a message ("Hi Maelle,", "Thanks Fitzgerald, ..."): capitalised only.
NAME_AFTER_GREETING = re.compile(
    r"^\s*(?i:hi|hello|hey|dear|thanks|thank\s+you|morning|good\s+(?:morning|afternoon|evening))\s+"
    rf"(?P<name>{_CAPITALISED}(?:\s+{_CAPITALISED})?)\s*[,!.:\n]"
)
# A name given as one: "surname Doherty", "name on the card is R. Okafor", "Attn: Gideon Marsh".
NAME_AS_NAME = re.compile(
    r"(?i:\b(?:(?:first|last|full|family|given|delivery|account|maiden)\s+name|surname|name\s+on\s+the\s+"
    r"(?:card|account|booking|order|ticket|parcel|reservation)|(?:his|her|their|husband's|wife's|partner's|"
    r"son's|daughter's|mother's|father's)\s+name|attn|for\s+the\s+attention\s+of|c/o)"
    r"(?:\s+(?:is|was|to|as))?\s*[:,]?\s+)"
    rf"(?P<name>(?:[A-Z]\.\s+)?{_ANY_WORD}(?:\s+{_ANY_WORD}){{0,2}})"
)
# Substrings without which a rule cannot match (so it is not run): of the verbs of contact, of the
# titles (as written, capitalised), of the words a lower-case postcode needs before it.
_CONTACT_STEMS = ("spok", "speak", "talk", "chat", "deal", "ask", "tell", "told", "contact", "email", "messag",
                  "phon", "ring", "rang", "cc", "forward", "transfer", "put", "name", "called")
_TITLE_STEMS = ("Mr", "Ms", "Mx", "Miss", "Mister", "Dr", "Prof", "Sir", "Dame", "Madam")
_POSTCODE_WORDS = ("post", "zip", "address", "deliver", "ship", "live", "flat", "street", "road", "lane",
                   "avenue")
# A name after a title: the title is kept, the name masked ("Kind regards, Mr. Smith").
NAME_AFTER_TITLE = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Mister|Madam)\.?\s+(?P<name>{_CAPITALISED}(?:\s+{_CAPITALISED})?)\b"
)
# What may follow a one-word name for it to count as one ("This is Dana.", "i'm dana from billing").
_CLAUSE_END = re.compile(r"(?i)\s*(?:[,.!?;:]|$)|\s+(?:from|here|speaking|calling|writing|again|with|at|and)\b")

_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|way|court|ct|place|pl|terrace|close|"
    r"crescent|cres|highway|hwy|parkway|pkwy|square|sq|circle|cir|trail|row|grove|gardens|walk|hill|rise|"
    r"mews|green|wharf|quay"
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
# A UK postcode in capitals ("HU5 3QT", "SW1A 1AA"); in any case only where the text says it is one.
UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b")
UK_POSTCODE_ANY_CASE = re.compile(r"(?i)\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b")
POSTCODE_CONTEXT = re.compile(
    r"(?i)\b(?:post\s*code|postal\s+code|zip(?:\s*code)?|address|deliver(?:ed|y)?\s+to|ship(?:ped)?\s+to|"
    r"live\s+(?:at|in)|flat|street|road|lane|avenue)\b")
# An email written to dodge filters: "at" and "dot" as words, or bracketed.
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\.)"
OBFUSCATED_EMAIL = re.compile(
    rf"(?i)(?<![\w.+\-])[a-z0-9][a-z0-9._+\-]{{0,63}}(?:{_DOT}[a-z0-9][a-z0-9._+\-]{{0,63}}){{0,3}}"
    rf"{_AT}[a-z0-9][a-z0-9\-]{{0,62}}(?:{_DOT}[a-z0-9\-]{{1,63}}){{1,4}}(?![\w])")
# A US ZIP code where the text says it is one.
ZIP_CODE = re.compile(r"(?i)\bzip(?:\s*code)?\s*(?:is|:)?\s*(?P<number>\d{5}(?:-\d{4})?)\b")
# A passport number: after the word, 6-9 letters and digits with a digit among them.
PASSPORT = re.compile(
    r"(?i)\bpassport(?:\s+(?:number|num|no\.?|nr\.?|id))?\s*(?:is|was|:|#)?\s*(?:is\s+)?"
    r"(?P<number>(?=[A-Z]{0,3}\d)[A-Z0-9]{6,9})\b")
# A UK national insurance number (its prefix letters as HMRC issues them), any case.
NATIONAL_INSURANCE = re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b")
NATIONAL_INSURANCE_CONTEXT = re.compile(
    r"(?i)\b(?:national\s+insurance|n\.?i\.?|nino)(?:\s+(?:number|num|no\.?))?\s*(?:is|:|#)?\s*"
    r"(?P<number>[a-z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[a-d])\b")
SOCIAL_SECURITY = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
SOCIAL_SECURITY_CONTEXT = re.compile(
    r"(?i)\b(?:ssn|social\s+security(?:\s+number)?|national\s+id(?:entity)?(?:\s+number)?)\s*(?:is|:|#)?\s*"
    r"(?P<number>\d{3}[\s\-]?\d{2}[\s\-]?\d{4})\b")
EUROPEAN_ADDRESS = re.compile(
    r"(?i)\b(?:\d{1,5}[a-z]?,?\s+(?:rue|avenue|boulevard|calle|avenida|via|viale|rua|piazza|plaza|place)"
    r"(?:\s+[a-zà-ÿ'\-]+){1,4}"
    r"|[a-zäöüß\-]+(?:strasse|straße|str\.|weg|gasse|platz|allee|laan|straat|gracht|vej|gatan|gate)\s+\d{1,5}[a-z]?)\b"
)


# The placeholder of a span that is no personal data but must not be masked as anything else.
KEPT = ""


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of a text hold personal data of one kind (its placeholder)."""

    start: int
    end: int
    placeholder: str


def mask_pii(text: str | None, names: Iterable[str] = ()) -> str:
    """The text with names (self-introduced, signed, related, and ``names``), addresses, emails,
    IP addresses, IBANs, cards, dates of birth and phones masked; cut to ``MAX_MASKED_CHARS``."""
    if not text:
        return ""
    text, cut_note = _cut(text)
    masked, end = [], 0
    for span in pii_spans(text, names):
        masked.append(text[end : span.start])
        masked.append(span.placeholder)
        end = span.end
    masked.append(text[end:])
    return "".join(masked) + cut_note


def mask_transcript(messages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(role, text) pairs masked; a name introduced anywhere is masked wherever it appears in the transcript."""
    names: set[str] = set()
    for _, content in messages:
        names.update(introduced_names(_cut(content or "")[0]))
    return [(role, mask_pii(content, names)) for role, content in messages]


def introduced_names(text: str) -> list[str]:
    """The words of names found in ``text`` ("Dana", "Whitfield")."""
    return [text[start:end] for start, end in _name_word_spans(text)]


def pii_spans(text: str, names: Iterable[str] = ()) -> list[Span]:
    """Where personal data is in ``text`` (which must be at most ``MAX_MASKED_CHARS`` long), in order,
    not overlapping: where two kinds claim the same characters, the earlier kind below wins."""
    # A rule whose words are nowhere in the text is not run (a substring test costs far less than a
    # pattern's pass over the text): most messages have none of them.
    lower = text.lower()
    candidates: list[Span] = []
    candidates += [Span(*m.span(), "#EMAIL#") for m in EMAIL.finditer(text)]
    if "dot" in lower or _bracketed_at(lower):
        candidates += [Span(*m.span(), "#EMAIL#") for m in OBFUSCATED_EMAIL.finditer(text) if _dodges(m.group(0))]
    if "passport" in lower:
        candidates += [Span(*m.span("number"), "#PASSPORT#") for m in PASSPORT.finditer(text)]
    candidates += [Span(*m.span(), "#NATIONAL_ID#") for m in NATIONAL_INSURANCE.finditer(text)]
    if "insurance" in lower or "ni" in lower or "n.i" in lower:
        candidates += [Span(*m.span("number"), "#NATIONAL_ID#") for m in NATIONAL_INSURANCE_CONTEXT.finditer(text)]
    candidates += [Span(*m.span(), "#NATIONAL_ID#") for m in SOCIAL_SECURITY.finditer(text)]
    if "ssn" in lower or "social" in lower or "national" in lower:
        candidates += [Span(*m.span("number"), "#NATIONAL_ID#") for m in SOCIAL_SECURITY_CONTEXT.finditer(text)]
    candidates += [Span(*m.span(), "#IP_ADDRESS#") for m in _ip_addresses(text)]
    candidates += [Span(*m.span(), "#IBAN#") for m in IBAN.finditer(text) if _is_iban(m.group(0))]
    candidates += [Span(*m.span(), "#ADDRESS#") for m in STREET_ADDRESS.finditer(text)]
    candidates += [Span(*m.span(), "#ADDRESS#") for m in EUROPEAN_ADDRESS.finditer(text)]
    candidates += [Span(*m.span(), "#ADDRESS#") for m in UK_POSTCODE.finditer(text)]
    if any(word in lower for word in _POSTCODE_WORDS):
        candidates += [Span(*m.span(), "#ADDRESS#") for m in UK_POSTCODE_ANY_CASE.finditer(text)
                       if POSTCODE_CONTEXT.search(text, max(0, m.start() - 60), m.start())]
    if "zip" in lower:
        candidates += [Span(*m.span("number"), "#ADDRESS#") for m in ZIP_CODE.finditer(text)]
    # Any other date is kept, and so is not taken for a phone number either ("on 2026-10-30").
    candidates += [Span(*m.span(), "#DATE#" if _is_birth_date(m) else KEPT) for m in DATE.finditer(text)]
    candidates += [Span(*m.span(), "#CARD#") for m in CARD.finditer(text) if _is_card(m)]
    candidates += [Span(*m.span(), "#PHONENUMBER#") for m in PHONE.finditer(text) if not _kept_identifier(m)]
    name_spans = _name_word_spans(text, lower)
    known = {text[start:end] for start, end in name_spans} | {name for name in names if name}
    candidates += [Span(start, end, "#NAME#") for start, end in name_spans]
    candidates += [Span(*m.span(), "#NAME#") for m in _known_words(text, known)]
    # Taken spans never overlap, so sorted by start they are sorted by end too: a candidate
    # overlaps one only if it overlaps its neighbour by start (a bisection, not a scan).
    starts: list[int] = []
    taken: list[Span] = []
    for candidate in candidates:
        at = bisect.bisect_left(starts, candidate.start)
        if at > 0 and taken[at - 1].end > candidate.start:
            continue
        if at < len(taken) and taken[at].start < candidate.end:
            continue
        starts.insert(at, candidate.start)
        taken.insert(at, candidate)
    return _merge_adjacent_names(text, [span for span in taken if span.placeholder != KEPT])


def _cut(text: str) -> tuple[str, str]:
    if len(text) <= MAX_MASKED_CHARS:
        return text, ""
    return text[:MAX_MASKED_CHARS], f" [{len(text) - MAX_MASKED_CHARS:,} more characters not shown]"


@cache
def _common_words() -> frozenset[str]:
    """Words that are never taken for a name: function and state words, and VADER's sentiment lexicon."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = {word for word in SentimentIntensityAnalyzer().lexicon if word.isalpha()}
    return frozenset(lexicon | _FUNCTION_WORDS)


def _name_word_spans(text: str, lower: str | None = None) -> list[tuple[int, int]]:
    """Spans of the words of names found by every name rule (``lower``: the text in lower case)."""
    lower = text.lower() if lower is None else lower
    spans: list[tuple[int, int]] = []
    for match in NAME_AFTER_MY_NAME_IS.finditer(text):
        spans += _words_until(match, lambda word: word.lower() in _FUNCTION_WORDS)
    for match in NAME_AFTER_INTRO.finditer(text):
        spans += _capitalised_name(match)
    for match in NAME_AFTER_INTRO_ANY_CASE.finditer(text):
        spans += _uncommon_name(match)
    for match in SIGN_OFF.finditer(text):
        words = _words_until(match)
        if not any(_is_common(text[start:end]) for start, end in words):
            spans += words
    for match in NAME_AFTER_RELATION.finditer(text):
        spans += _capitalised_name(match) or _uncommon_name(match)
    # the rules of issue 47, each only where its words are (see pii_spans)
    if "call" in lower:
        for match in NAME_AFTER_CALL_ME.finditer(text):
            spans += _capitalised_name(match) or _uncommon_name(match)
    if "it" in lower:
        for match in NAME_AFTER_ITS.finditer(text):
            words = _capitalised_name(match)
            if words and _CLAUSE_END.match(text, words[-1][1]):
                spans += words
    if "here" in lower:
        for match in NAME_HERE.finditer(text):
            words = _words_until(match)
            if words and all(not _is_common(word) and (re.fullmatch(_CAPITALISED, word) or word.islower())
                             for word in (text[start:end] for start, end in words)):
                spans += words
    if any(stem in lower for stem in _CONTACT_STEMS):
        for match in NAME_AFTER_CONTACT.finditer(text):
            spans += _capitalised_name(match)
    if any(title in text for title in _TITLE_STEMS):
        for match in NAME_AFTER_TITLE.finditer(text):
            spans += _words_until(match, _is_common)
    greeting = NAME_AFTER_GREETING.match(text)
    if greeting:
        spans += _capitalised_name(greeting)
    if "name" in lower or "att" in lower or "c/o" in lower:
        for match in NAME_AS_NAME.finditer(text):
            spans += _capitalised_name(match)
    return sorted(set(spans))


def _word(text: str, span: tuple[int, int]) -> str:
    return text[span[0] : span[1]].lower()


def _is_common(word: str) -> bool:
    """A common word, or a lower-case -ing / -ed form ("this is happening", "i am registered")."""
    return word.lower() in _common_words() or (word.islower() and len(word) > 4 and word.endswith(("ing", "ed")))


def _words_until(match: re.Match, stop: Callable[[str], bool] = lambda word: False) -> list[tuple[int, int]]:
    """The spans of the name group's words up to the first one ``stop`` holds for."""
    words = []
    for word in re.finditer(r"\S+", match.group("name")):
        if stop(word.group(0)):
            break
        words.append((match.start("name") + word.start(), match.start("name") + word.end()))
    return words


def _capitalised_name(match: re.Match) -> list[tuple[int, int]]:
    """The name group's leading capitalised words, none of them a common word ("I'm Not Sure" is none)."""
    words = []
    for span in _words_until(match):
        word = match.string[span[0] : span[1]]
        initial = not words and re.fullmatch(r"[A-Z]\.", word)  # "R. Okafor"
        if not initial and (not re.fullmatch(_CAPITALISED, word) or _is_common(word)):
            break
        words.append(span)
    return words if not words or not re.fullmatch(r"[A-Z]\.", match.string[words[-1][0]:words[-1][1]]) else words[:-1]


def _uncommon_name(match: re.Match) -> list[tuple[int, int]]:
    """The name group's words up to the first common word; a single word only where it ends a clause."""
    words = _words_until(match, _is_common)
    if len(words) == 1 and not _CLAUSE_END.match(match.string, words[0][1]):
        return []
    return words


def _known_words(text: str, words: set[str]) -> Iterable[re.Match]:
    words = {word for word in words if len(word) >= 2}
    if not words:
        return []
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.finditer(rf"\b(?:{alternatives})\b", text, re.IGNORECASE)


def _merge_adjacent_names(text: str, spans: list[Span]) -> list[Span]:
    """"Dana Whitfield" found as two words becomes one ``#NAME#``."""
    merged: list[Span] = []
    for span in spans:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.placeholder == span.placeholder == "#NAME#"
            and not text[previous.end : span.start].strip()
        ):
            merged[-1] = Span(previous.start, span.end, "#NAME#")
        else:
            merged.append(span)
    return merged


def _bracketed_at(lower: str) -> bool:
    return "at" in lower and ("[" in lower or "(" in lower or "{" in lower or "<" in lower)


def _dodges(candidate: str) -> bool:
    """An obfuscated email writes its "at" or "dot" as a word or in brackets (a plain one is EMAIL's)."""
    lowered = candidate.lower()
    return "@" not in candidate and (" dot " in lowered or re.search(r"[\[({<]\s*(?:at|dot)\s*[\])}>]", lowered)
                                     is not None)


def _ip_addresses(text: str) -> Iterable[re.Match]:
    for pattern, kind in ((IPV4, ipaddress.IPv4Address), (IPV6, ipaddress.IPv6Address)):
        for match in pattern.finditer(text):
            if not re.search(r"[0-9A-Fa-f]", match.group(0)):
                continue  # "::" alone is a valid address but never personal data
            try:
                kind(match.group(0))
            except ValueError:
                continue
            yield match


def _is_iban(candidate: str) -> bool:
    """Capitals are taken as an IBAN as written (a mistyped one is still personal data); any other
    case only with correct check digits, so "ab12 this year" is no IBAN."""
    compact = candidate.replace(" ", "")
    if compact.isupper():
        return True
    rearranged = (compact[4:] + compact[:4]).upper()
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _is_birth_date(match: re.Match) -> bool:
    before = match.string[max(0, match.start() - 40) : match.start()]
    if BIRTH_CONTEXT.search(before):
        return True
    year = match.group("year") or match.group("iso_year") or match.group("year1") or match.group("year2")
    if len(year) != 4 or not 1900 <= int(year) <= dt.date.today().year - _BIRTH_YEAR_MIN_AGE:
        return False
    if match.group("a"):
        first, second = int(match.group("a")), int(match.group("b"))
        return 1 <= min(first, second) <= 12 and 1 <= max(first, second) <= 31
    if match.group("iso_year"):
        return 1 <= int(match.group("iso_month")) <= 12 and 1 <= int(match.group("iso_day")) <= 31
    return 1 <= int(match.group("day1") or match.group("day2")) <= 31


def _is_card(match: re.Match) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    if not 13 <= len(digits) <= 19:
        return False
    context = _identifier_word(match)
    return context is None or (context in _CARD_STILL_AFTER and _luhn_valid(digits))


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _kept_identifier(match: re.Match) -> bool:
    """A number after an identifier word is kept, unless it is written as a phone number is
    ("+44 ..." or "(212) ...": no order number starts so)."""
    return _identifier_word(match) is not None and not match.group(0).startswith(("+", "("))


def _identifier_word(match: re.Match) -> str | None:
    """The identifier word ("order", "account", ...) right before the match, lower-cased, if any."""
    before = match.string[max(0, match.start() - 40) : match.start()]
    context = KEPT_NUMBER_CONTEXT.search(before)
    return context.group("word").lower() if context else None
