"""The classify-eval command: rules offline, llm against the local fake server."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from support.fake_llm_server import FakeLLMServer

from convo_warehouse.cli import main
from convo_warehouse.lib.classify.stages import STAGES

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_classify_eval_prints_scores_for_each_golden_file():
    result = CliRunner().invoke(main, ["classify-eval"])
    assert result.exit_code == 0, result.output
    for expected in ("support_dev", "support_holdout", "macro-F1", "exact-set accuracy", "confusion summary", "resolved"):
        assert expected in result.output


def test_classify_eval_llm_uses_the_endpoint_and_scores_its_answers(tmp_path, monkeypatch):
    golden = tmp_path / "tiny.jsonl"
    lines = [json.loads(line) for line in (GOLDEN / "support_holdout.jsonl").read_text().splitlines()[:6]]
    golden.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with FakeLLMServer() as server:
        # the "model" answers every stage false: recall must drop to 0 for every stage
        server.default = lambda body: {"kind": "ok", "content": json.dumps({s: False for s in STAGES})}
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("CONVO_LLM_MODEL", "fake")
        result = CliRunner().invoke(main, ["classify-eval", "--classifier", "llm", "--golden", str(golden), "--json"])
        assert result.exit_code == 0, result.output
        assert server.calls == len(lines)
    scores = json.loads(result.output)
    assert scores["llm_calls"] == len(lines) and scores["fell_back_to_rules"] == 0
    assert all(stage["recall"] == 0.0 for stage in scores["sets"]["tiny"]["stages"].values())
