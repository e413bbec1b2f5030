"""Format checks for reasoning completions: the R1-Zero format reward and the R1 "think" layout.

The paper's format reward (R1-Zero, section 2.2.2) asks the model to put its reasoning between ``<think>`` and
``</think>`` and its answer between ``<answer>`` and ``</answer>``. Two layouts are checked here:

``r1_zero``  ``<think> reasoning </think> <answer> answer </answer>`` and nothing else (whitespace around and between
             the blocks is allowed; each tag appears exactly once; neither block is empty).
``think``    the released R1 layout: exactly one closed ``<think>...</think>`` block at the start, followed by a
             non-empty answer (summary) text.

The forced prefix: DeepSeek starts responses with ``"<think>\\n"`` and the R1-Zero template may end the prompt with it,
so the completion a trainer hands over may or may not begin with ``<think>``. ``prefix`` is what the prompt forced: it
is put back in front of the completion unless the completion already starts with it (after leading whitespace).

Pure functions; never raise on model output (anything that is not a string is simply not well formatted).
"""
from __future__ import annotations

import re
from typing import Any

from ..config import THINK_PREFIX

TEMPLATES = ("r1_zero", "think")
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_R1_ZERO = re.compile(r"\A\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*\Z", re.S)
_THINK = re.compile(r"\A\s*<think>(?P<think>.*?)</think>(?P<answer>.*)\Z", re.S)


def with_prefix(completion: Any, prefix: str | None = None) -> str | None:
    """The completion as the model's whole response: ``prefix`` + completion unless it already starts with it."""
    if not isinstance(completion, str):
        return None
    if prefix and not completion.lstrip().startswith(prefix.strip()):
        return prefix + completion
    return completion


def format_ok(completion: Any, template: str = "r1_zero", prefix: str | None = None) -> bool:
    """True when the response (``prefix`` restored) follows ``template`` exactly (see the module docstring)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown format template {template!r}; expected one of {TEMPLATES}")
    text = with_prefix(completion, prefix)
    if text is None:
        return False
    counts = {t: text.count(t) for t in _TAGS}
    if template == "r1_zero":
        if any(c != 1 for c in counts.values()):
            return False
        m = _R1_ZERO.match(text)
        return bool(m and m.group("think").strip() and m.group("answer").strip())
    if counts["<think>"] != 1 or counts["</think>"] != 1:
        return False
    m = _THINK.match(text)
    return bool(m and m.group("answer").strip())


def format_reward(completion: Any, template: str = "r1_zero", prefix: str | None = None) -> float:
    """The paper's rule-based format reward: 1.0 when ``format_ok``, else 0.0."""
    return 1.0 if format_ok(completion, template, prefix) else 0.0


def tag_score(completion: Any, prefix: str | None = None) -> float:
    """Partial credit for the R1-Zero tags, 0.25 per tag that appears exactly once, in order (open-r1's
    ``tag_count_reward`` idea). A shaping signal for small models that never hit the full format by chance; the
    paper's reward is ``format_reward``."""
    text = with_prefix(completion, prefix)
    if text is None:
        return 0.0
    score, pos = 0.0, 0
    for tag in _TAGS:
        if text.count(tag) == 1:
            at = text.find(tag)
            if at >= pos:
                score += 0.25
                pos = at + len(tag)
    return score


def think_prefix(forced: bool) -> str | None:
    """The prefix the harness forces (``harness.config.THINK_PREFIX``) or None."""
    return THINK_PREFIX if forced else None


__all__ = ["TEMPLATES", "format_ok", "format_reward", "tag_score", "with_prefix", "think_prefix"]
