"""The classified stages of the ``support`` funnel and what each one means.

The definitions are the contract's (``marts.md``, "What each classified support
stage means"); the LLM prompt quotes them and the golden set is labelled by them.
"""

from __future__ import annotations

FUNNEL_NAME = "support"

STAGES: tuple[str, ...] = (
    "greeted",
    "problem_identified",
    "solution_proposed",
    "solution_accepted",
    "resolved",
)

DEFINITIONS: dict[str, str] = {
    "greeted": "the agent acknowledged or greeted the user.",
    "problem_identified": (
        "the agent shows it understood the user's specific issue: restates it, asks a "
        "targeted question about it, or acts on it (looks up that order, that account)."
    ),
    "solution_proposed": "the agent offered a specific solution, fix or next step.",
    "solution_accepted": "the user agreed to or went along with that solution.",
    "resolved": (
        "the issue is fully resolved: the user confirms it, or the agent completed the "
        "action the user wanted."
    ),
}
