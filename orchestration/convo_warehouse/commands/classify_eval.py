"""``convo-warehouse classify-eval``: score a classifier against the golden set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from convo_warehouse.lib.warehouse import REPO_ROOT

DEFAULT_GOLDEN = (
    REPO_ROOT / "tests" / "golden" / "support_dev.jsonl",
    REPO_ROOT / "tests" / "golden" / "support_holdout.jsonl",
    REPO_ROOT / "tests" / "golden" / "support_fresh_holdout.jsonl",
    REPO_ROOT / "tests" / "golden" / "support_quality_holdout.jsonl",
)


@click.command(name="classify-eval")
@click.option(
    "--classifier",
    type=click.Choice(["rules", "llm", "hybrid"]),
    default="rules",
    show_default=True,
    help="Which classifier to score. llm/hybrid use OPENAI_BASE_URL, OPENAI_API_KEY, CONVO_LLM_MODEL.",
)
@click.option(
    "--golden",
    "golden_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Golden JSONL file (repeatable; each is scored separately, then all together). "
    "Default: tests/golden/support_dev.jsonl, support_holdout.jsonl, support_fresh_holdout.jsonl and support_quality_holdout.jsonl.",
)
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Rules file to score (default: $CONVO_STAGE_RULES or the packaged stage_rules.yml).")
@click.option("--show-errors", default=5, show_default=True, help="Conversation ids listed per stage and error kind.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON instead of tables.")
def classify_eval(classifier: str, golden_paths: tuple[str, ...], rules_file: str | None, show_errors: int, as_json: bool) -> None:
    """Print per-stage precision, recall, F1, macro-F1, exact-set accuracy and a confusion summary.

    Golden files hold one conversation per line: conversation_id, messages
    [{role: user|agent, content}], labels {stage: true|false}.
    """
    from convo_warehouse.lib.classify.evaluate import evaluate, format_report, load_golden
    from convo_warehouse.lib.classify.hybrid import classify_golden
    from convo_warehouse.lib.classify.rules import load_rules

    paths = [Path(path) for path in golden_paths] or [path for path in DEFAULT_GOLDEN if path.exists()]
    if not paths:
        raise click.UsageError("no golden file found; pass --golden PATH")
    rules = load_rules(rules_file)
    sets = {path.stem: load_golden(path) for path in paths}
    everything = [conversation for conversations in sets.values() for conversation in conversations]
    predictions, info = classify_golden(everything, classifier, rules)
    output = {"classifier": classifier, "rules_version": rules.version, **info, "sets": {}}
    reports = []
    groups = dict(sets)
    if len(sets) > 1:
        groups["all"] = everything
    for name, conversations in groups.items():
        gold = {conversation.conversation_id: conversation.labels for conversation in conversations}
        evaluation = evaluate(gold, {cid: predictions.get(cid, {}) for cid in gold})
        output["sets"][name] = evaluation.as_dict()
        reports.append(format_report(f"{name} ({classifier})", evaluation, show_errors))
    if as_json:
        click.echo(json.dumps(output, indent=2))
    else:
        click.echo(f"classifier: {classifier}   rules: {rules.version}   " + "   ".join(f"{k}: {v}" for k, v in info.items()))
        click.echo("\n\n".join(reports))
    sys.stdout.flush()
