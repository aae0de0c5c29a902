"""PII masking on realistic support text: names after self-introduction, street addresses,
emails, phones, cards; order and booking numbers kept. The prompt test goes through a real
HTTP server on 127.0.0.1 and inspects what the endpoint received.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import pytest
from support.fake_llm_server import FakeLLMServer

from convo_warehouse.lib.classify.llm import LLMClassifier, LLMSettings, TranscriptItem
from convo_warehouse.lib.classify.pii import MAX_MASKED_CHARS, introduced_names, mask_pii, mask_transcript
from convo_warehouse.lib.classify.pii_eval import load_examples, score_masking

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        # self-introductions
        ("Hi, my name is Dana Whitfield and my parcel is late", ["Dana", "Whitfield"],
         "Hi, my name is #NAME# and my parcel is late"),
        ("hello my name is dana whitfield, I can't log in", ["dana", "whitfield"],
         "hello my name is #NAME#, I can't log in"),
        ("This is Marcus O'Neill from the Leeds office", ["Marcus", "O'Neill"],
         "This is #NAME# from the Leeds office"),
        ("I'm Priya Raman, my card was declined", ["Priya", "Raman"], "I'm #NAME#, my card was declined"),
        ("I am Tomasz Nowak and I rent flat 3", ["Tomasz", "Nowak"], "I am #NAME# and I rent flat 3"),
        ("My name's Jo, order 4471 is missing", ["Jo"], "My name's #NAME#, order 4471 is missing"),
        # street addresses
        ("please ship it to 5953 Maple Grove St, Apt 4 instead", ["5953", "Maple"],
         "please ship it to #ADDRESS# instead"),
        ("new address: 12 high street, flat 2", ["12 high"], "new address: #ADDRESS#"),
        ("I moved to 221B Baker Street last month", ["Baker"], "I moved to #ADDRESS# last month"),
        ("Lieferung an Hauptstrasse 12, Berlin", ["Hauptstrasse"], "Lieferung an #ADDRESS#, Berlin"),
        ("c'est au 8 rue des Lilas", ["Lilas"], "c'est au #ADDRESS#"),
        # the kinds masked before
        ("email me at dana.w+shop@example.co.uk", ["dana.w"], "email me at #EMAIL#"),
        ("my mobile is 07700 900123", ["900123"], "my mobile is #PHONENUMBER#"),
        ("call +44 20 7946 0958 after 5", ["7946"], "call #PHONENUMBER# after 5"),
        ("the card 4111 1111 1111 1111 keeps failing", ["4111"], "the card #CARD# keeps failing"),
        # issue 27 item 11: kinds that passed before
        ("i'm dana whitfield, my order 4471 never came", ["dana", "whitfield"], "i'm #NAME#, my order 4471 never came"),
        ("This is Dana", ["Dana"], "This is #NAME#"),
        ("i'm dana from billing", ["dana"], "i'm #NAME# from billing"),
        ("It broke after a day. Thanks, Dana Whitfield", ["Dana", "Whitfield"], "It broke after a day. Thanks, #NAME#"),
        ("Please cancel it.\nRegards,\nOlu Adeyemi", ["Olu", "Adeyemi"], "Please cancel it.\nRegards,\n#NAME#"),
        ("my husband John Smith made the booking", ["John", "Smith"], "my husband #NAME# made the booking"),
        ("my daughter, Amy, used my card", ["Amy"], "my daughter, #NAME#, used my card"),
        ("my account number is 5555 5555 5555 4444", ["4444"], "my account number is #CARD#"),
        ("policy 4012-8888-8888-1881 was charged twice", ["1881"], "policy #CARD# was charged twice"),
        ("my iban is de89 3704 0044 0532 0130 00", ["de89", "3704", "0130"], "my iban is #IBAN#"),
        ("my ip is 192.168.1.20", ["192.168"], "my ip is #IP_ADDRESS#"),
        ("from 10.0.0.1 and 2001:db8:85a3::8a2e:370:7334", ["10.0", "2001:db8"], "from #IP_ADDRESS# and #IP_ADDRESS#"),
        ("date of birth 12/03/1985", ["1985"], "date of birth #DATE#"),
        ("I was born March 12, 1985 if you need it", ["1985"], "I was born #DATE# if you need it"),
        ("dob: 04.11.90", ["04.11"], "dob: #DATE#"),
        ("Flat 2, Hull HU5 3QT", ["HU5"], "Flat 2, Hull #ADDRESS#"),
        # issue 47 item 10: what reached the LLM and the dashboard before
        ("I spoke to Sarah Connor yesterday", ["Sarah", "Connor"], "I spoke to #NAME# yesterday"),
        ("can you ask Peter Parker to ring me", ["Peter", "Parker"], "can you ask #NAME# to ring me"),
        ("call me Dana, the app is broken", ["Dana"], "call me #NAME#, the app is broken"),
        ("Dana here, still no refund", ["Dana"], "#NAME# here, still no refund"),
        ("Please close it. Kind regards, Mr. Smith", ["Smith"], "Please close it. Kind regards, Mr. #NAME#"),
        ("my passport number is 533401271", ["533401271"], "my passport number is #PASSPORT#"),
        ("NI number AB 12 34 56 C", ["34 56"], "NI number #NATIONAL_ID#"),
        ("ssn 078-05-1120 on the form", ["1120"], "ssn #NATIONAL_ID# on the form"),
        ("my postcode is hu5 3qt", ["hu5"], "my postcode is #ADDRESS#"),
        ("email dana at example dot com", ["dana"], "email #EMAIL#"),
        ("it's jorge [at] correo [dot] example", ["jorge"], "it's #EMAIL#"),
        ("Hi Maelle, your refund is on its way", ["Maelle"], "Hi #NAME#, your refund is on its way"),
    ],
)
def test_personal_data_is_masked(text, secrets, expected):
    masked = mask_pii(text)
    for secret in secrets:
        assert secret not in masked
    assert masked == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 112-4481920 shows delivered but it's not here",
        "my order number is 1124481920555",
        "booking ref: 88123456",
        "the tracking number is 00340434161094042557",
        "invoice #20231107 is wrong",
        "your 2 parcels are on the way",
        "this is great, thanks",
        "I'm Not sure",  # one capitalised word after I'm is no name
        "it took 3 days on the way",
        "version 5.2.1, order 4477, 30 credits",
        "account 88123456 was locked",  # an account number that is no card (Luhn) stays
        "I ordered it on 12/03/2026",  # a recent date is no birth date, nor a phone number
        "I paid on 2026-10-30",
        "windows build 10.0.19045.2006",
        "I'm so frustrated, this is taking forever",
        "i'm still waiting",
        "This is ridiculous!",
        "Thanks again!",
        "thanks, appreciate it",
        "It is the best thing",
        "my husband is not happy",
        "meeting at 12:30:45",
        "I spoke to someone yesterday",
        "call me back tomorrow",
        "it's Monday and still nothing",
        "Support here said they'd email me",
        "invoice #INV-2026-00913 has the wrong amount",
        "my iphone 12 128gb is slow",
        "what documents do I need, passport or driving licence?",
        "look at the screenshot I attached",
    ],
)
def test_identifiers_and_ordinary_text_are_kept(text):
    assert mask_pii(text) == text


def test_names_introduced_once_are_masked_everywhere_in_the_transcript():
    masked = mask_transcript(
        [
            ("user", "hi, this is Dana Whitfield, my router is down"),
            ("agent", "Hello Dana, sorry about that. Is it Dana Whitfield on the account?"),
            ("user", "yes, Whitfield"),
        ]
    )
    assert [text for _, text in masked] == [
        "hi, this is #NAME#, my router is down",
        "Hello #NAME#, sorry about that. Is it #NAME# on the account?",
        "yes, #NAME#",
    ]


def test_introduced_names_stop_at_ordinary_words():
    assert introduced_names("my name is sam and i need help") == ["sam"]
    assert introduced_names("this is taking too long") == []


def test_prompts_sent_to_the_endpoint_carry_no_names_or_addresses():
    transcript = [
        ("user", "Hello, my name is Dana Whitfield. My order 112-4481920 went to the wrong place"),
        ("agent", "Hi Dana, sorry about that. Which address should it go to?"),
        ("user", "5953 Maple Grove St, Apt 4. My number is 07700 900123"),
        ("agent", "Thanks Ms Whitfield, I've updated the address for order 112-4481920."),
    ]
    settings = LLMSettings(base_url=None, api_key="k", model="fake", timeout=2.0, max_attempts=1, backoff_base=0.01)
    with FakeLLMServer() as server:
        settings.base_url = server.base_url
        [result] = LLMClassifier(settings).classify_many_sync([TranscriptItem("c1", "h1", transcript)])
        sent = json.dumps(server.requests)
    assert result.labels is not None
    for secret in ("Dana", "Whitfield", "5953", "Maple Grove", "900123"):
        assert secret not in sent
    assert "112-4481920" in sent  # the order number is kept
    assert "#NAME#" in sent and "#ADDRESS#" in sent


# Measured on the labelled sets (docs/quality.md#pii-masking); a change to the rules may not go below.
# pii_eval.yml was used to tune the rules; pii_eval_holdout.yml was scored once, after tuning.
@pytest.mark.parametrize(
    ("name", "recall_floor", "precision_floor"),
    [("pii_eval.yml", 53 / 56, 54 / 54), ("pii_eval_holdout.yml", 20 / 20, 20 / 21),
     ("pii_eval_support.yml", 172 / 183, 175 / 175)],
)
def test_recall_and_precision_on_the_labelled_sets_stay_at_the_measured_floor(name, recall_floor, precision_floor):
    score = score_masking(load_examples(FIXTURES / name))
    assert score.labelled >= 20
    assert score.recall >= recall_floor, score.missed
    assert score.precision >= precision_floor, score.wrongly_masked


# Per kind on the 322 support messages (docs/quality.md#pii-masking): recall floors as measured.
KIND_RECALL_FLOORS = {"name": 72 / 78, "email": 16 / 16, "phone": 16 / 16, "address": 24 / 28, "card": 7 / 7,
                      "iban": 6 / 7, "ip_address": 7 / 7, "date_of_birth": 11 / 11, "passport": 7 / 7,
                      "national_id": 6 / 6}


def test_every_kind_keeps_its_measured_recall_and_precision():
    examples = load_examples(FIXTURES / "pii_eval_support.yml")
    assert len(examples) >= 300
    score = score_masking(examples)
    for kind, floor in KIND_RECALL_FLOORS.items():
        assert score.kinds[kind].recall >= floor, (kind, [miss for miss in score.missed])
        assert score.kinds[kind].precision == 1.0, (kind, score.wrongly_masked)


def test_a_name_given_once_is_masked_in_every_later_message():
    masked = mask_transcript([("user", "call me Priya, my parcel is late"),
                              ("agent", "Thanks Priya! I see order 12."),
                              ("user", "Priya again: any news?")])
    assert [text for _, text in masked] == ["call me #NAME#, my parcel is late", "Thanks #NAME#! I see order 12.",
                                            "#NAME# again: any news?"]


def test_the_score_counts_misses_and_wrong_masks():
    examples = [
        {"text": "call 07700 900123 or see order 4471", "pii": ["07700 900123"]},
        {"text": "I live near the sea", "pii": ["the sea"]},  # a miss
        {"text": "windows 10.0.0.1 build"},  # an IPv4-shaped version: a wrong mask
    ]
    score = score_masking(examples)
    assert (score.labelled, score.found, score.masked, score.masked_correctly) == (2, 1, 2, 1)
    assert score.missed == [("the sea", "I live near the sea")]
    assert score.wrongly_masked == [("10.0.0.1", "windows 10.0.0.1 build")]


def _fastest_of(runs: int, text: str) -> float:
    """The least CPU time of this process (not wall time: other processes on a busy machine
    do not count) one masking of ``text`` took, with the garbage collector paused."""
    timings = []
    gc.disable()
    try:
        for _ in range(runs):
            started = time.process_time()
            mask_pii(text)
            timings.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(timings)


# Inputs that made a pattern scan from every position (the email pattern on a run of letters:
# quadratic in its length) or could: runs of each pattern's characters and prefixes.
HOSTILE_UNITS = ["a", "a.", "1", "1 ", "1.", "a:", "a@", "my name is ", "i'm dana ", "thanks, ", "my husband ",
                 "Dana ", "12 maple ", "12/03/", "GB82 ", "a at ", "a dot ", "a [at] ", "call me ", "spoke to Dana ",
                 "Mr Dana ", "passport 1", "hu5 ", "AB 12 ", "Dana Dana here "]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_masking_hostile_text_is_linear_and_bounded(unit):
    # Linear: four times the text takes about four times as long; quadratic would be sixteen.
    short, long = (unit * 2_500)[:2_500], (unit * 10_000)[:10_000]
    assert _fastest_of(5, long) < 8 * _fastest_of(5, short) + 0.002
    # Bounded: 40,000 characters (cut to MAX_MASKED_CHARS) take milliseconds; a generous bound.
    assert _fastest_of(1, unit * 40_000) < 0.5


def test_long_messages_are_cut_before_masking_and_say_so():
    text = "my name is Dana Whitfield. " + "x" * (2 * MAX_MASKED_CHARS)
    masked = mask_pii(text)
    assert masked.startswith("my name is #NAME#. ")
    assert masked.endswith(f" [{len(text) - MAX_MASKED_CHARS:,} more characters not shown]")
    assert len(masked) < MAX_MASKED_CHARS + 60
    [(_, masked_in_transcript)] = mask_transcript([("user", text)])
    assert masked_in_transcript == masked
