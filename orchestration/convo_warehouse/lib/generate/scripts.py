"""Conversation scripts: the ordered steps one kind of conversation goes through.

A conversation is described by a handful of small integer *dimensions* (kind,
topic, how far it got, whether the user rephrased, how it ended, ...). Every
distinct combination is turned once into a list of steps by ``build_script``;
the generator then expands scripts for 100,000 conversations at a time with
numpy (``np.repeat`` and a table lookup), so the Python here runs once per
distinct combination, not once per conversation.

A step is a ``Step`` (event type, delay kind, content category, fixed
properties). Steps are interned in a ``StepRegistry`` so each gets a small id
and per-step attributes become numpy lookup arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convo_warehouse.lib.generate import text

# conversation kinds
SUPPORT, SALES, NOT_ENGAGED = 0, 1, 2
# endings (dimension `ending`)
END_SILENT, END_ABANDON, END_HANDOFF, END_COMPLETED, END_RESOLVED_NO_EVENT = 0, 1, 2, 3, 4

# (name, size) of each dimension, in radix order
DIMENSIONS = [
    ("kind", 3),
    ("topic", 5),
    ("level", 4),
    ("vague", 2),
    ("rephrase", 2),
    ("ending", 5),
    ("feedback", 2),
    ("converted", 2),
    ("extras", 2),
    ("has_init", 2),
    ("thanks", 2),
    ("ne_sub", 3),
    ("attended", 2),
    ("won", 2),
]

DELAY_KINDS = ["zero", "start", "greet", "user", "agent", "tool", "sys", "timeout", "feedback", "days", "weeks"]


@dataclass(frozen=True)
class Step:
    etype: str
    delay: str
    cat: str | None = None  # content category (text.TEMPLATES key, greeting without tone)
    rephrase: bool = False  # content is a near-identical repeat of `cat`
    fb_opt: bool = False  # optional fallback_triggered row (kept at the turn's fallback rate)
    reply_off: int = 0  # for fb_opt: rows ahead to the agent reply it replaces
    tool: str | None = None
    topic: str | None = None
    end_reason: str | None = None
    handoff: bool = False
    goal: str | None = None
    funnel: str | None = None
    stage: str | None = None
    flow: str | None = None
    button: str | None = None
    total_turns: int = -1
    abandoned_at: int = -1


class StepRegistry:
    """Interns steps; gives ids and numpy attribute arrays."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.ids: dict[Step, int] = {}
        self._arrays: dict[str, np.ndarray] | None = None

    def id(self, step: Step) -> int:
        found = self.ids.get(step)
        if found is None:
            found = len(self.steps)
            self.steps.append(step)
            self.ids[step] = found
            self._arrays = None
        return found

    def arrays(self, lookups: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Per-step attribute arrays; string attributes coded by ``lookups[attr]`` (-1 = none)."""
        if self._arrays is None:
            out: dict[str, np.ndarray] = {}
            for attr in ("etype", "delay", "cat", "tool", "topic", "end_reason", "goal", "funnel",
                         "stage", "flow", "button"):
                index = {value: i for i, value in enumerate(lookups[attr])}
                out[attr] = np.array([index[getattr(s, attr)] if getattr(s, attr) is not None else -1
                                      for s in self.steps], dtype=np.int32)
            for attr in ("rephrase", "fb_opt", "handoff"):
                out[attr] = np.array([getattr(s, attr) for s in self.steps], dtype=bool)
            for attr in ("reply_off", "total_turns", "abandoned_at"):
                out[attr] = np.array([getattr(s, attr) for s in self.steps], dtype=np.int32)
            self._arrays = out
        return self._arrays


def decode(key: int) -> dict[str, int]:
    dims = {}
    for name, size in DIMENSIONS:
        dims[name] = key % size
        key //= size
    return dims


def encode(columns: dict[str, np.ndarray]) -> np.ndarray:
    key = np.zeros(len(next(iter(columns.values()))), dtype=np.int64)
    mult = 1
    for name, size in DIMENSIONS:
        key += columns[name].astype(np.int64) * mult
        mult *= size
    return key


def build_script(d: dict[str, int]) -> list[Step]:
    """The ordered steps of a conversation with dimensions ``d``."""
    steps: list[Step] = []
    kind = d["kind"]

    def user(cat: str, optional_fallback: bool = True, rephrase: bool = False) -> None:
        steps.append(Step("user_message", "user", cat=cat, rephrase=rephrase))
        if optional_fallback:
            steps.append(Step("fallback_triggered", "tool", fb_opt=True, topic=topic))

    def agent(cat: str, delay: str = "agent") -> None:
        steps.append(Step("agent_message", delay, cat=cat))

    if kind == NOT_ENGAGED:
        topic = None
        sub = d["ne_sub"]
        if sub in (0, 1):
            steps.append(Step("interaction_initialized", "zero"))
        if sub in (1, 2):
            steps.append(Step("conversation_started", "start" if sub == 1 else "zero"))
            agent("greet.support", "greet")
        if sub == 1:
            steps.append(Step("conversation_ended", "timeout", end_reason="timeout"))
        return _finalise(steps)

    level = d["level"]
    if kind == SUPPORT:
        topic = text.SUPPORT_TOPICS[d["topic"]]
    else:
        topic = text.SALES_TOPICS[d["topic"] % len(text.SALES_TOPICS)]
    if d["has_init"]:
        steps.append(Step("interaction_initialized", "zero"))
    steps.append(Step("conversation_started", "start" if d["has_init"] else "zero"))
    agent("greet.support" if kind == SUPPORT else "greet.sales", "greet")
    flow = None
    if d["extras"]:
        if kind == SUPPORT:
            button = {"order_status": "Track my order", "refund": "Start return", "password": "Reset password",
                      "billing": "Track my order", "shipping": "Track my order"}[topic]
            flow = {"order_status": "order_tracking_flow", "refund": "returns_flow",
                    "password": "password_reset_flow", "billing": "returns_flow",
                    "shipping": "order_tracking_flow"}[topic]
        else:
            button, flow = ("See pricing" if topic == "pricing" else "Talk to sales"), "demo_booking_flow"
        steps.append(Step("button_clicked", "user", button=button))
        steps.append(Step("flow_started", "sys", flow=flow))
    if d["vague"] or (kind == SUPPORT and level == 0):
        user("u.vague")
        agent("a.ask")

    first_cat = f"u.problem.{topic}" if kind == SUPPORT else f"u.interest.{topic}"
    if kind == SALES or level >= 1:
        if d["rephrase"]:
            user(first_cat, optional_fallback=False)
            steps.append(Step("fallback_triggered", "tool", topic=topic))
            agent("a.fallback")
            user(first_cat, rephrase=True)
        else:
            user(first_cat)
        agent(f"a.restate.{topic}" if kind == SUPPORT else "a.qualify")

    resolved = False
    late_stages: list[Step] = []
    if kind == SUPPORT:
        if level >= 2:
            user(f"u.detail.{topic}")
            steps.append(Step("tool_called", "tool", tool=text.TOOLS_LOOKUP[topic]))
            agent(f"a.propose.{topic}")
        if level >= 3:
            resolved = True
            user("u.accept")
            steps.append(Step("tool_called", "tool", tool=text.TOOLS_ACTION[topic]))
            agent(f"a.resolved.{topic}")
            if d["converted"]:
                agent("a.offer")
                user("u.email")
                steps.append(Step("conversion", "sys", goal="email_collected"))
                agent("a.email_ok")
    else:
        if level >= 2:
            user("u.answer")
            steps.append(Step("stage_reached", "sys", funnel="sales", stage="qualified"))
            agent(f"a.offer_demo.{topic}")
        if level >= 3:
            resolved = True
            if d["converted"] and topic == "pricing":
                user("u.accept.quote")
                steps.append(Step("conversion", "sys", goal="email_collected"))
                agent("a.quote_sent")
            elif d["converted"]:
                user("u.accept.demo")
                steps.append(Step("tool_called", "tool", tool="book_meeting"))
                steps.append(Step("stage_reached", "sys", funnel="sales", stage="booked"))
                steps.append(Step("conversion", "sys", goal="demo_booked"))
                agent("a.booked")
                if d["attended"]:
                    late_stages.append(Step("stage_reached", "days", funnel="sales", stage="attended"))
                    if d["won"]:
                        late_stages.append(Step("stage_reached", "weeks", funnel="sales", stage="converted"))
            else:
                user("u.decline")
                agent("a.bye")
    if resolved and d["thanks"]:
        user("u.thanks")
        agent("a.bye")
    if flow is not None:
        steps.append(Step("flow_completed" if resolved else "flow_abandoned", "sys", flow=flow))

    turns = sum(1 for s in steps if s.etype == "user_message")
    ending = d["ending"]
    if resolved:
        if ending == END_COMPLETED:
            steps.append(Step("conversation_completed", "sys", total_turns=turns))
            steps.append(Step("conversation_ended", "sys", end_reason="resolved"))
    elif ending == END_HANDOFF:
        user("u.human", optional_fallback=False)
        steps.append(Step("handoff_requested", "sys", handoff=True))
        agent("a.handoff")
        steps.append(Step("conversation_ended", "sys", end_reason="handoff"))
    elif ending == END_ABANDON:
        steps.append(Step("conversation_abandoned", "timeout", abandoned_at=turns))
        steps.append(Step("conversation_ended", "sys", end_reason="user_left"))
    if d["feedback"]:
        steps.append(Step("feedback_received", "feedback"))
    steps.extend(late_stages)
    return _finalise(steps)


def _finalise(steps: list[Step]) -> list[Step]:
    """Point each optional fallback at the agent reply it would replace."""
    out = []
    for i, step in enumerate(steps):
        if step.fb_opt:
            off = 0
            for j in range(i + 1, len(steps)):
                if steps[j].etype == "user_message":
                    break
                if steps[j].etype == "agent_message":
                    off = j - i
                    break
            step = Step(**{**step.__dict__, "reply_off": off})
        out.append(step)
    return out
