"""The NumPy sentence encoder on the real all-MiniLM-L6-v2 (lib/classify/sentence_encoder.py).

Checked against a literal one-sentence-at-a-time BERT (tests/support/embeddings.py) on texts of
every length, with the model's own declared pooling and normalisation; batching must not change
a text's embedding (padding is masked); and, where sentence-transformers happens to be installed,
against it too (the benchmark does that on the real chats: benchmarks/bench_embeddings.py).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from support.embeddings import ReferenceBert

pytestmark = pytest.mark.embeddings

TEXTS = [
    "",
    "ok",
    "I can't log into my account",
    "I am unable to sign in to my account",
    "Hallo, ich habe eine Frage zu meiner Rechnung #NUMBER#. Können Sie mir helfen?",
    "Order 1Z48213 still hasn't arrived 😡 it's been 3 weeks!!!",
    # longer than the model's 256 tokens: truncated, as sentence-transformers does
    "My printer shows an error whenever I try to print from the laptop. " * 40,
]


@pytest.fixture(scope="module")
def encoder(embedding_model):
    from convo_warehouse.lib.classify.embeddings import EmbeddingSettings, load_encoder

    return load_encoder(EmbeddingSettings(model=str(embedding_model)))


def test_the_folder_declares_what_the_reference_computes(embedding_model):
    modules = [module["type"] for module in json.loads((embedding_model / "modules.json").read_text())]
    pooling = json.loads((embedding_model / "1_Pooling" / "config.json").read_text())
    assert modules[-1].endswith("Normalize") and pooling["pooling_mode_mean_tokens"]
    assert not pooling["pooling_mode_cls_token"]


def test_batched_embeddings_equal_the_literal_reference(encoder, embedding_model):
    reference = ReferenceBert(embedding_model)
    ours = encoder.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    for text, vector in zip(TEXTS, ours, strict=True):
        expected = reference.embed(text)
        assert np.abs(vector - expected).max() < 2e-5, text[:40]
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_a_texts_embedding_does_not_depend_on_its_batch(encoder):
    alone = [encoder.encode([text])[0] for text in TEXTS[:4]]
    together = encoder.encode(TEXTS)  # padded to the longest, in a different order
    for index, vector in enumerate(alone):
        assert np.abs(vector - together[index]).max() < 1e-5


def test_paraphrases_are_closer_than_unrelated_messages(encoder):
    vectors = encoder.encode(["How do I reset my password?", "password reset how", "What are your opening hours?"])
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.5


def test_the_identity_names_the_model_and_its_weights(encoder, embedding_model, tmp_path):
    from convo_warehouse.lib.classify.sentence_encoder import weights_digest

    assert encoder.identity == f"all-MiniLM-L6-v2@{weights_digest(embedding_model)}"
    # a copy with one changed weight byte is another model
    copy = tmp_path / "all-MiniLM-L6-v2"
    for path in embedding_model.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(embedding_model)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert weights_digest(copy) != weights_digest(embedding_model)


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="sentence-transformers is not installed (it is not needed: this compares with it)")
def test_embeddings_equal_sentence_transformers(encoder, embedding_model):
    from sentence_transformers import SentenceTransformer

    theirs = SentenceTransformer(str(embedding_model), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.abs(encoder.encode(TEXTS) - theirs).max() < 2e-5
