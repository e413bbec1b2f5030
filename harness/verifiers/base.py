"""The typed verdict every verifier returns.

Verifiers are shared by evaluation, RL rewards (training/rewards.py) and distillation filters (distill/), so the
verdict is a small, JSON-friendly value: a status, the extracted answer, and a hashable key that puts equivalent
answers in one vote for cons@k.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CORRECT = "correct"
INCORRECT = "incorrect"
NO_ANSWER = "no_answer"
TRUNCATED = "truncated"
TIMEOUT = "timeout"
ERROR = "error"
STATUSES = (CORRECT, INCORRECT, NO_ANSWER, TRUNCATED, TIMEOUT, ERROR)


@dataclass(frozen=True)
class Verdict:
    status: str
    answer: str | None = None  # the extracted answer as text (None when nothing could be extracted)
    key: str | None = None  # voting key: equal keys = equivalent answers (None = abstains from the vote)
    detail: dict[str, Any] = field(default_factory=dict)  # verifier-specific facts (fallback used, per-test results)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {STATUSES}")

    @property
    def correct(self) -> bool:
        return self.status == CORRECT

    @property
    def reward(self) -> float:
        return 1.0 if self.status == CORRECT else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.status, "answer": self.answer, "answer_key": self.key, "verdict_detail": self.detail}


THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def split_think(completion: str) -> tuple[str | None, str | None]:
    """Return (reasoning, final_text) of a reasoning-model completion.

    final_text is only what follows the last ``</think>``; it is None when a ``<think>`` block was opened and never
    closed (the model ran out of tokens while thinking), because then no answer was given. A completion with no think
    block at all is all final text.
    """
    if completion is None:
        return None, None
    close = completion.rfind(THINK_CLOSE)
    if close >= 0:
        start = completion.find(THINK_OPEN)
        reasoning = completion[start + len(THINK_OPEN):close] if 0 <= start < close else completion[:close]
        return reasoning, completion[close + len(THINK_CLOSE):]
    if THINK_OPEN in completion:
        return completion[completion.find(THINK_OPEN) + len(THINK_OPEN):], None
    return None, completion
