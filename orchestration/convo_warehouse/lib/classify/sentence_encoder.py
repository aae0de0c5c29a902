"""Sentence embeddings from a sentence-transformers model folder, in NumPy (no torch).

A sentence-transformers model folder (all-MiniLM-L6-v2 and its kin) holds a
BERT encoder (``config.json``, ``model.safetensors``, ``tokenizer.json``)
and a pooling step (``1_Pooling/config.json``: mean of the token vectors),
then, for most, a unit-length normalisation (``modules.json`` lists
``Normalize``). ``NumpyEncoder`` runs exactly that: the tokenizer is
Hugging Face's own (``tokenizers``), the weights are read with
``safetensors``, and the six attention layers are NumPy matrix products
(GELU through SciPy's erf). Its embeddings equal sentence-transformers' on
torch to within float32 rounding, at about torch's speed on the CPU, and
the extra it needs (``pip install '.[embeddings]'``: tokenizers,
safetensors) is a small fraction of torch's size; the comparison is in
benchmarks/results/ (docs/classification.md#semantic-rephrases).

``SentenceTransformersEncoder`` wraps ``sentence_transformers`` for models
the NumPy path does not run (another architecture, weights without a
safetensors file): ``CONVO_EMBEDDING_BACKEND=sentence-transformers``, with
sentence-transformers installed by the user.

No warehouse and no Dagster here; ``embeddings.py`` stores what this computes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: sentence-transformers' module types this encoder understands, in order.
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
#: the longest input when the folder says nothing (sentence-transformers' Transformer default).
DEFAULT_MAX_TOKENS = 256


class EmbeddingModelError(RuntimeError):
    """The configured model cannot be found or run; the message says what to do."""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def model_layout(folder: Path) -> tuple[Path, Path | None, bool]:
    """(transformer folder, pooling folder or None, normalises) from ``modules.json``.

    A folder without ``modules.json`` is a bare Hugging Face encoder: mean
    pooling, no normalisation (sentence-transformers' own default).
    """
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return folder, None, False
    transformer, pooling, normalises = folder, None, False
    for module in _read_json(modules_file):
        kind = module.get("type", "")
        path = folder / module.get("path", "")
        if kind == TRANSFORMER:
            transformer = path
        elif kind == POOLING:
            pooling = path
        elif kind == NORMALIZE:
            normalises = True
        else:
            raise EmbeddingModelError(
                f"{folder}: module {kind!r} is not supported by the numpy backend; "
                "set CONVO_EMBEDDING_BACKEND=sentence-transformers (pip install sentence-transformers)"
            )
    return transformer, pooling, normalises


def weights_digest(folder: Path) -> str:
    """12 hex digits of a SHA-256 over what decides the embeddings: configs, tokenizer, weights."""
    transformer, pooling, normalises = model_layout(folder)
    digest = hashlib.sha256()
    names = [transformer / "config.json", transformer / "tokenizer.json", transformer / "model.safetensors",
             transformer / "sentence_bert_config.json", folder / "sentence_bert_config.json"]
    if pooling is not None:
        names.append(pooling / "config.json")
    for path in names:
        if path.is_file():
            digest.update(path.name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    digest.update(b"normalize" if normalises else b"raw")
    return digest.hexdigest()[:12]


class NumpyEncoder:
    """A BERT sentence encoder with mean (or CLS) pooling, in NumPy float32."""

    def __init__(self, folder: Path, batch_size: int = 32) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as error:
            raise EmbeddingModelError(
                f"the numpy embedding backend needs the embeddings extra ({error.name} is missing): "
                "pip install 'convo-warehouse[embeddings]'"
            ) from None
        self.folder = folder
        self.batch_size = batch_size
        transformer, pooling, self.normalises = model_layout(folder)
        config = _read_json(transformer / "config.json")
        if config.get("model_type") != "bert":
            raise EmbeddingModelError(
                f"{folder}: model_type {config.get('model_type')!r}; the numpy backend runs BERT encoders "
                "(all-MiniLM-L6-v2, all-MiniLM-L12-v2, bge-small, ...). Set "
                "CONVO_EMBEDDING_BACKEND=sentence-transformers for others (pip install sentence-transformers)"
            )
        if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise EmbeddingModelError(f"{folder}: only gelu activations and absolute positions are supported")
        weights_file = transformer / "model.safetensors"
        if not weights_file.is_file():
            raise EmbeddingModelError(f"{folder}: no model.safetensors (the numpy backend reads only safetensors)")
        self.pooling = "mean"
        if pooling is not None:
            pooling_config = _read_json(pooling / "config.json")
            if pooling_config.get("pooling_mode_cls_token"):
                self.pooling = "cls"
            elif not pooling_config.get("pooling_mode_mean_tokens", True):
                raise EmbeddingModelError(f"{folder}: only mean or CLS pooling is supported")
        max_tokens = DEFAULT_MAX_TOKENS
        for candidate in (folder / "sentence_bert_config.json", transformer / "sentence_bert_config.json"):
            if candidate.is_file():
                max_tokens = int(_read_json(candidate).get("max_seq_length", max_tokens))
                break
        max_tokens = min(max_tokens, int(config.get("max_position_embeddings", max_tokens)))
        self.dimensions = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))

        self.tokenizer = Tokenizer.from_file(str(transformer / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        pad_id = int(config.get("pad_token_id", 0))
        pad_token = self.tokenizer.id_to_token(pad_id) or "[PAD]"
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the batch's longest

        weights = {name.removeprefix("bert."): tensor.astype(np.float32, copy=False)
                   for name, tensor in load_file(str(weights_file)).items()}
        self.word_embeddings = weights["embeddings.word_embeddings.weight"]
        self.position_embeddings = weights["embeddings.position_embeddings.weight"]
        self.token_type_embeddings = weights["embeddings.token_type_embeddings.weight"]
        self.embeddings_norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        head_size = self.dimensions // self.heads
        scale = np.float32(1 / math.sqrt(head_size))
        self.layers = []
        for index in range(int(config["num_hidden_layers"])):
            def weight(name: str, index=index) -> np.ndarray:
                return weights[f"encoder.layer.{index}.{name}"]

            # query, key and value in one product (the query pre-scaled by 1/sqrt(head size))
            qkv = np.concatenate([weight("attention.self.query.weight") * scale, weight("attention.self.key.weight"),
                                  weight("attention.self.value.weight")]).T.copy()
            qkv_bias = np.concatenate([weight("attention.self.query.bias") * scale, weight("attention.self.key.bias"),
                                       weight("attention.self.value.bias")])
            self.layers.append((
                qkv, qkv_bias,
                weight("attention.output.dense.weight").T.copy(), weight("attention.output.dense.bias"),
                weight("attention.output.LayerNorm.weight"), weight("attention.output.LayerNorm.bias"),
                weight("intermediate.dense.weight").T.copy(), weight("intermediate.dense.bias"),
                weight("output.dense.weight").T.copy(), weight("output.dense.bias"),
                weight("output.LayerNorm.weight"), weight("output.LayerNorm.bias"),
            ))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (float32, ``dimensions`` wide), in the input order.

        Texts are batched by length (shortest first) so little padding is computed.
        """
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encodings = self.tokenizer.encode_batch([texts[index] or "" for index in batch])
            ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
            types = np.array([encoding.type_ids for encoding in encodings], dtype=np.int64)
            mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.float32)
            result[batch] = self._forward(ids, types, mask)
        return result

    def _layer_norm(self, x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
        centred = x - x.mean(-1, keepdims=True)
        variance = (centred * centred).mean(-1, keepdims=True)
        return centred / np.sqrt(variance + np.float32(self.eps)) * gain + bias

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from scipy.special import erf

        batch, length = ids.shape
        heads, head_size = self.heads, self.dimensions // self.heads
        x = self.word_embeddings[ids] + self.position_embeddings[:length][None] + self.token_type_embeddings[types]
        x = self._layer_norm(x, *self.embeddings_norm).reshape(batch * length, self.dimensions)
        # padding positions get no attention
        blocked = ((1.0 - mask) * np.float32(-1e30))[:, None, None, :].astype(np.float32)
        for (qkv, qkv_bias, out, out_bias, norm1, norm1_bias,
             up, up_bias, down, down_bias, norm2, norm2_bias) in self.layers:
            q, k, v = (x @ qkv + qkv_bias).reshape(batch, length, 3, heads, head_size).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.dimensions)
            x = self._layer_norm(context @ out + out_bias + x, norm1, norm1_bias)
            hidden = x @ up + up_bias
            hidden = hidden * (0.5 + 0.5 * erf(hidden * np.float32(1 / math.sqrt(2))))
            x = self._layer_norm(hidden @ down + down_bias + x, norm2, norm2_bias)
        tokens = x.reshape(batch, length, self.dimensions)
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        else:
            pooled = (tokens * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        if self.normalises:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32, copy=False)


class SentenceTransformersEncoder:
    """sentence-transformers on torch, for models the NumPy encoder does not run."""

    def __init__(self, name_or_folder: str, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbeddingModelError(
                "CONVO_EMBEDDING_BACKEND=sentence-transformers needs sentence-transformers (and torch): "
                "pip install sentence-transformers"
            ) from None
        self.batch_size = batch_size
        self.model = SentenceTransformer(name_or_folder, device="cpu")
        # renamed in sentence-transformers 6 (the old name warns there)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimensions = int(dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode([text or "" for text in texts], batch_size=self.batch_size,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
