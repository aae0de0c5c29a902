"""The live sentiment score (Python, one message) equals the batch lexicon query (DuckDB, set-based)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from convo_warehouse.lib.classify.sentiment import NEGATORS, _lexicon, score_text, score_texts

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
REAL_CHATS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-support-chats" / "chats.jsonl"


def _texts() -> list[str]:
    texts = []
    for path in sorted(GOLDEN.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            texts += [message["content"] for message in json.loads(line)["messages"]]
    if REAL_CHATS.exists():
        texts += [(json.loads(line).get("properties") or {}).get("content") or "" for line in REAL_CHATS.read_text().splitlines()]
    words = sorted(_lexicon()) + list(NEGATORS) + ["the", "it", "İS", "Don’t", "NOT", "x", "'", "9", "\n"]
    generator = random.Random(5)
    texts += [" ".join(generator.choice(words) for _ in range(generator.randint(0, 8))) for _ in range(3000)]
    return texts


def test_live_score_equals_the_lexicon_query_on_every_message():
    texts = _texts()
    assert len(texts) > (6000 if REAL_CHATS.exists() else 4000)  # the real chats are not in every checkout
    batch = score_texts(texts)
    differences = [(text, live, sql) for text, live, sql in zip(texts, map(score_text, texts), batch, strict=True)
                   if abs(live - sql) > 1e-12]
    assert not differences, differences[:5]


def test_negation_and_scale():
    assert score_text("thanks") > 0 > score_text("not thanks")
    assert score_text("no words of the lexicon") == 0.0
    assert -1 < score_text("terrible awful useless horrible") < -0.5
