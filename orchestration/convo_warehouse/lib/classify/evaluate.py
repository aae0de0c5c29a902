"""Golden-set evaluation: per-stage precision/recall/F1, macro-F1, exact-set accuracy."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from convo_warehouse.lib.classify.stages import STAGES


@dataclass
class GoldenConversation:
    conversation_id: str
    messages: list[tuple[str, str]]
    labels: dict[str, bool]
    split: str = ""


def load_golden(path: str | os.PathLike) -> list[GoldenConversation]:
    """Read a golden JSONL file: conversation_id, messages [{role, content}], labels {stage: bool}."""
    conversations = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        labels = record["labels"]
        missing = set(STAGES) - set(labels)
        if missing:
            raise ValueError(f"{path}:{number}: labels miss {sorted(missing)}")
        roles = {message["role"] for message in record["messages"]}
        if not roles <= {"user", "agent"}:
            raise ValueError(f"{path}:{number}: roles must be user/agent, got {sorted(roles)}")
        conversations.append(
            GoldenConversation(
                conversation_id=record["conversation_id"],
                messages=[(message["role"], message["content"]) for message in record["messages"]],
                labels={stage: bool(labels[stage]) for stage in STAGES},
                split=record.get("split", ""),
            )
        )
    return conversations


@dataclass
class StageScore:
    stage: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass
class Evaluation:
    stages: dict[str, StageScore]
    conversations: int
    exact_matches: int
    error_patterns: Counter

    @property
    def macro_f1(self) -> float:
        return sum(score.f1 for score in self.stages.values()) / len(self.stages)

    @property
    def exact_set_accuracy(self) -> float:
        return self.exact_matches / self.conversations if self.conversations else 0.0

    def as_dict(self) -> dict:
        return {
            "conversations": self.conversations,
            "macro_f1": round(self.macro_f1, 4),
            "exact_set_accuracy": round(self.exact_set_accuracy, 4),
            "stages": {
                stage: {
                    "precision": round(score.precision, 4),
                    "recall": round(score.recall, 4),
                    "f1": round(score.f1, 4),
                    "support": score.support,
                    "tp": score.tp,
                    "fp": score.fp,
                    "fn": score.fn,
                    "tn": score.tn,
                }
                for stage, score in self.stages.items()
            },
        }


def evaluate(
    gold: dict[str, dict[str, bool]],
    predicted: dict[str, dict[str, bool]],
) -> Evaluation:
    """Compare predictions to gold labels; a conversation missing from ``predicted`` reaches nothing."""
    stages = {stage: StageScore(stage) for stage in STAGES}
    exact = 0
    patterns: Counter = Counter()
    for conversation_id, labels in gold.items():
        prediction = predicted.get(conversation_id, {})
        errors = []
        for stage in STAGES:
            truth, guess = bool(labels[stage]), bool(prediction.get(stage, False))
            score = stages[stage]
            if truth and guess:
                score.tp += 1
            elif guess:
                score.fp += 1
                score.false_positives.append(conversation_id)
                errors.append(f"+{stage}")
            elif truth:
                score.fn += 1
                score.false_negatives.append(conversation_id)
                errors.append(f"-{stage}")
            else:
                score.tn += 1
        if errors:
            patterns[" ".join(errors)] += 1
        else:
            exact += 1
    return Evaluation(stages, len(gold), exact, patterns)


def format_report(title: str, evaluation: Evaluation, show_errors: int = 5) -> str:
    """A plain-text table a person can read in a terminal."""
    lines = [
        f"== {title}: {evaluation.conversations} conversations",
        f"{'stage':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8} {'tp':>4} {'fp':>4} {'fn':>4} {'tn':>4}",
    ]
    for stage, score in evaluation.stages.items():
        lines.append(
            f"{stage:<20} {score.precision:>9.3f} {score.recall:>7.3f} {score.f1:>6.3f} "
            f"{score.support:>8} {score.tp:>4} {score.fp:>4} {score.fn:>4} {score.tn:>4}"
        )
    lines.append(f"macro-F1: {evaluation.macro_f1:.3f}   exact-set accuracy: {evaluation.exact_set_accuracy:.3f}")
    lines.append("confusion summary (+stage = predicted but not labelled, -stage = labelled but missed):")
    if not evaluation.error_patterns:
        lines.append("  (no errors)")
    for pattern, count in evaluation.error_patterns.most_common(8):
        lines.append(f"  {count:>4}  {pattern}")
    if show_errors:
        for stage, score in evaluation.stages.items():
            if score.false_positives or score.false_negatives:
                lines.append(
                    f"  {stage}: false positives {score.false_positives[:show_errors]}"
                    f" false negatives {score.false_negatives[:show_errors]}"
                )
    return "\n".join(lines)
