"""Compare the shipped sentiment lexicon with VADER on hand-labelled support messages.

``benchmarks/sentiment_messages.jsonl``: one user message per line with a hand
label (negative / neutral / positive), written for this comparison (not taken
from any dataset). A score >= 0.05 reads positive, <= -0.05 negative (VADER's
own convention), else neutral. Prints agreement, recall per label and the
Pearson correlation of scores with labels (-1 / 0 / 1) for both models.

    .venv/bin/python benchmarks/bench_sentiment.py
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from convo_warehouse.lib.classify import sentiment

LABELS = {"negative": -1, "neutral": 0, "positive": 1}
DEFAULT_FILE = Path(__file__).with_name("sentiment_messages.jsonl")


def label_of(score: float, threshold: float = 0.05) -> int:
    return 1 if score >= threshold else -1 if score <= -threshold else 0


def report(name: str, scores: list[float], labels: list[int]) -> dict:
    agreement = sum(label_of(score) == label for score, label in zip(scores, labels)) / len(labels)
    recall = {}
    for label_name, label in LABELS.items():
        picked = [score for score, truth in zip(scores, labels) if truth == label]
        recall[label_name] = sum(label_of(score) == label for score in picked) / len(picked) if picked else None
    correlation = statistics.correlation(scores, [float(label) for label in labels])
    return {"model": name, "agreement": round(agreement, 3), "recall": recall, "correlation": round(correlation, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="labelled messages (JSONL: text, label)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["text"] for row in rows]
    labels = [LABELS[row["label"]] for row in rows]
    analyzer = SentimentIntensityAnalyzer()
    results = [
        report(sentiment.MODEL, sentiment.score_texts(texts), labels),
        report("vadersentiment", [analyzer.polarity_scores(text)["compound"] for text in texts], labels),
    ]
    print(f"{len(rows)} messages: " + ", ".join(f"{name} {labels.count(value)}" for name, value in LABELS.items()))
    for result in results:
        recall = ", ".join(f"{name} {value:.3f}" for name, value in result["recall"].items())
        print(f"{result['model']:<22} agreement {result['agreement']:.3f}  recall: {recall}  correlation {result['correlation']:.3f}")


if __name__ == "__main__":
    main()
