"""Intervention rules: the file, its validation, and what a firing carries.

Rules live in ``intervention_rules.yml`` (``CONVO_INTERVENTION_RULES`` for
another file), written in the funnel marker language with the live
extensions (``lib/live/markers.py``). A firing is identified by its
idempotency key, a hash of the conversation and the rule: the webhook
receiver, the landing event's ``event_id`` and the live state all use it, so
a rule fires at most once per conversation, even across a restart.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from convo_warehouse.lib.live.markers import Node, Program, RuleError

DEFAULT_RULES_PATH = Path(__file__).with_name("intervention_rules.yml")
EVENT_TYPE = "intervention_triggered"
LLM_MODES = ("confirm",)


@dataclass(frozen=True)
class InterventionRule:
    name: str
    description: str
    node: Node
    relevant_bits: int
    reads_stages: bool
    reads_turns: bool
    llm: str | None = None


@dataclass(frozen=True)
class InterventionRules:
    rules: tuple[InterventionRule, ...]
    program: Program
    path: str
    version: str


def rules_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("CONVO_INTERVENTION_RULES") or DEFAULT_RULES_PATH)


def load_intervention_rules(path: str | os.PathLike | None = None) -> InterventionRules:
    """Read and compile the rules file; a ``RuleError`` names the file, the rule and the problem."""
    path = rules_path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RuleError(f"{path}: cannot read the intervention rules: {error}") from error
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a mapping of rule name -> {{description, rule}}")
    program = Program(live=True)
    rules = []
    for name, spec in data.items():
        if not isinstance(name, str) or not name.replace("_", "a").isalnum() or not name[:1].islower():
            raise RuleError(f"{path}: rule name {name!r} must be lower-case letters, digits and _")
        if not isinstance(spec, dict) or "rule" not in spec:
            raise RuleError(f"{path}: rule '{name}' needs a rule")
        unknown = set(spec) - {"description", "rule", "llm"}
        if unknown:
            raise RuleError(f"{path}: rule '{name}': unknown keys {sorted(unknown)} (expected description, rule, llm)")
        llm = spec.get("llm")
        if llm is not None and llm not in LLM_MODES:
            raise RuleError(f"{path}: rule '{name}': llm must be one of {', '.join(LLM_MODES)}")
        try:
            node = program.compile(spec["rule"], name)
        except RuleError as error:
            raise RuleError(f"{path}: {error}") from error
        rules.append(InterventionRule(
            name=name, description=str(spec.get("description") or name).strip(), node=node,
            relevant_bits=node.relevant_bits(), reads_stages=node.reads_stages(), reads_turns=node.reads_turns(),
            llm=llm,
        ))
    version = "interventions-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return InterventionRules(tuple(rules), program, str(path), version)


def idempotency_key(conversation_id: str, rule: str) -> str:
    """The same for every attempt and every restart: at most one firing per conversation and rule."""
    return hashlib.sha256(f"{conversation_id}\x1f{rule}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def iso(moment: datetime | None) -> str | None:
    """A naive UTC datetime as ISO-8601 with microseconds and Z (the SDK's form)."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Firing:
    """One intervention: the webhook's JSON and the landing event are made from it."""

    key: str
    conversation_id: str
    user_id: str | None
    channel: str | None
    rule: str
    description: str
    stage: str | None  # the furthest support stage reached when it fired
    stages: list[str]
    triggered_at: datetime  # time of the event that made the rule hold
    trigger_event_id: str
    fired_at: datetime  # wall clock, UTC
    condition_met_at: float  # epoch seconds when that event was acknowledged
    evidence: list[dict]
    user_turns: int
    classifier: str = "rules"
    fallback_reason: str | None = None
    context: tuple[str, ...] = ()  # the conversation's messages held when it fired (names to mask)

    def masked_payload(self) -> dict:
        """``webhook_payload`` with each evidence text masked (``lib/classify/pii.py``): a name
        introduced in any message of ``context`` is masked in every text."""
        from convo_warehouse.lib.classify.pii import introduced_names, mask_pii

        names: set[str] = set()
        for text in self.context:
            names.update(introduced_names(text))
        payload = self.webhook_payload()
        payload["evidence"] = [{**item, "text": mask_pii(item["text"], names) if item["text"] else item["text"]}
                               for item in payload["evidence"]]
        return payload

    def webhook_payload(self) -> dict:
        return {
            "idempotency_key": self.key,
            "conversation_id": self.conversation_id,
            "user_id": self.user_id,
            "rule": self.rule,
            "description": self.description,
            "stage": self.stage,
            "stages": self.stages,
            "evidence": self.evidence,
            "user_turns": self.user_turns,
            "triggered_at": iso(self.triggered_at),
            "fired_at": iso(self.fired_at),
            "condition_met_at": self.condition_met_at,
            "classifier": self.classifier,
            "fallback_reason": self.fallback_reason,
        }

    def landing_event(self) -> dict:
        """The ``intervention_triggered`` event: at the trigger's time, so it never moves a
        conversation's last event or duration."""
        return {
            "event_id": f"intervention-{self.key}",
            "conversation_id": self.conversation_id,
            "user_id": self.user_id,
            "event_type": EVENT_TYPE,
            "timestamp": iso(self.triggered_at),
            "channel": self.channel,
            "properties": {
                "rule": self.rule,
                "stage_at_trigger": self.stage,
                "idempotency_key": self.key,
                "fired_at": iso(self.fired_at),
                "trigger_event_id": self.trigger_event_id,
                "evidence_event_ids": [item["event_id"] for item in self.evidence],
                "user_turns": self.user_turns,
                "classifier": self.classifier,
                "fallback_reason": self.fallback_reason,
            },
        }
