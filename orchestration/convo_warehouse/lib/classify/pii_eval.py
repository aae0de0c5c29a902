"""Precision and recall of ``pii.mask_pii`` on labelled messages (tests/fixtures/pii_eval*.yml).

Counted per piece of personal data, whatever its placeholder:

- recall: labelled pieces whose every character is masked, over all labelled pieces;
- precision: masked spans that overlap a labelled piece, over all masked spans
  (a mask on an order number, a version or an ordinary word counts against it).

A set may label each piece with its kind (``pii: {name: [...], email: [...]}``,
as ``pii_eval_support.yml`` does; a plain list is kind ``any``): then both
are also counted per kind, recall over the pieces of that kind and
precision over the masks whose placeholder is that kind's (``KINDS``).

``python -m convo_warehouse.lib.classify.pii_eval [file]`` prints them and every miss.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from convo_warehouse.lib.classify.pii import pii_spans

DEFAULT_SET = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "pii_eval.yml"


# kind of a labelled piece -> the placeholder that masks it
KINDS = {"name": "#NAME#", "email": "#EMAIL#", "phone": "#PHONENUMBER#", "address": "#ADDRESS#", "card": "#CARD#",
         "iban": "#IBAN#", "ip_address": "#IP_ADDRESS#", "date_of_birth": "#DATE#", "passport": "#PASSPORT#",
         "national_id": "#NATIONAL_ID#"}
_KIND_OF = {placeholder: kind for kind, placeholder in KINDS.items()}


def pieces_of(example: dict) -> list[tuple[str, str]]:
    """(kind, text) of each labelled piece of an example (kind ``any`` in unlabelled sets)."""
    labelled = example.get("pii") or []
    if isinstance(labelled, dict):
        return [(kind, piece) for kind, pieces in labelled.items() for piece in pieces]
    return [("any", piece) for piece in labelled]


@dataclass
class KindScore:
    labelled: int = 0
    found: int = 0
    masked: int = 0
    masked_correctly: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.masked_correctly / self.masked if self.masked else 1.0


@dataclass
class MaskingScore:
    labelled: int = 0
    found: int = 0
    masked: int = 0
    masked_correctly: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)  # (piece, text)
    wrongly_masked: list[tuple[str, str]] = field(default_factory=list)  # (masked characters, text)
    kinds: dict[str, KindScore] = field(default_factory=dict)

    def kind(self, name: str) -> KindScore:
        return self.kinds.setdefault(name, KindScore())

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.masked_correctly / self.masked if self.masked else 1.0


def load_examples(path: Path = DEFAULT_SET) -> list[dict]:
    examples = yaml.safe_load(path.read_text(encoding="utf-8"))
    for number, example in enumerate(examples, start=1):
        for kind, piece in pieces_of(example):
            if kind != "any" and kind not in KINDS:
                raise ValueError(f"{path}: example {number}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
            if example["text"].count(piece) != 1:
                raise ValueError(f"{path}: example {number}: {piece!r} must occur exactly once in its text")
    return examples


def score_masking(examples: list[dict]) -> MaskingScore:
    score = MaskingScore()
    for example in examples:
        text = example["text"]
        pieces = [(kind, text.index(piece), text.index(piece) + len(piece)) for kind, piece in pieces_of(example)]
        spans = pii_spans(text)
        masked_chars = {position for span in spans for position in range(span.start, span.end)}
        for kind, start, end in pieces:
            score.labelled += 1
            score.kind(kind).labelled += 1
            if all(position in masked_chars for position in range(start, end)):
                score.found += 1
                score.kind(kind).found += 1
            else:
                score.missed.append((text[start:end], text))
        for span in spans:
            kind = _KIND_OF.get(span.placeholder, span.placeholder)
            score.masked += 1
            score.kind(kind).masked += 1
            if any(span.start < end and start < span.end for _, start, end in pieces):
                score.masked_correctly += 1
                score.kind(kind).masked_correctly += 1
            else:
                score.wrongly_masked.append((text[span.start : span.end], text))
    return score


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_SET
    score = score_masking(load_examples(path))
    print(f"{path.name}: recall {score.recall:.3f} ({score.found}/{score.labelled}), "
          f"precision {score.precision:.3f} ({score.masked_correctly}/{score.masked})")
    for kind, numbers in sorted(score.kinds.items()):
        print(f"  {kind}: recall {numbers.recall:.3f} ({numbers.found}/{numbers.labelled}), "
              f"precision {numbers.precision:.3f} ({numbers.masked_correctly}/{numbers.masked})")
    for piece, text in score.missed:
        print(f"  missed {piece!r} in {text!r}")
    for piece, text in score.wrongly_masked:
        print(f"  masked {piece!r} in {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
