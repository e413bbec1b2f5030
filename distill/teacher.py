"""A programmatic teacher: a harness backend that writes exact worked solutions to `arith` problems.

It stands in for DeepSeek-R1 in the CPU distillation demo (``distill/recipes/cpu_demo.yaml``: ``teacher.backend:
programmatic``). It is a program, not a model, and the report says so. Its samples go through the same eval run
(persisted, scored by the shared math verifier), the same rejection filters and the same SFT as a served R1's.

A real teacher is sometimes wrong; this one slips on purpose in ``slip_rate`` of its samples (the last step's result
off by one or ten, chosen by the sample's seed), so the demo shows the ``correct`` filter rejecting wrong samples
and the pipeline proving none of them reaches the student.

Solution layout (R1's: reasoning in the think block, then a short summary with the boxed answer)::

    <think>
    45 * 67 = 45 * 60 + 45 * 7 = 2700 + 315 = 3015.
    3015 - 12 = 3003.
    </think>
    The answer is \\boxed{3003}.

Short on purpose: this tokenizer writes every digit as a token, and a 135M student learns a 50-token solution in
minutes of CPU SFT; a restatement of the problem would only add tokens to copy.

``completion_tokens`` counts words and punctuation marks (the teacher has no tokenizer); ``max_tokens`` cuts there
with finish_reason ``length``, as a model would be cut.
"""
from __future__ import annotations

import random
import re
import time
from typing import Any, Iterator

from harness.backends.base import BACKENDS, Backend, Completion, GenRequest
from harness.config import THINK_PREFIX
from tasks.arith import worked_steps as solve

NAME = "programmatic"
_EXPR = re.compile(r"Compute ((?:-?\d+)(?: [-+*] \d+)*)\.")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def worked_solution(expr: str, slip: int = 0) -> tuple[str, int]:
    """(completion after the "<think>\\n" prefix, the answer it states). ``slip`` != 0 makes the last line wrong."""
    steps, value = solve(expr)
    steps = steps or [f"The expression is just {value}."]
    stated = value + slip
    if slip:
        steps[-1] = re.sub(r"= -?\d+\.$", f"= {stated}.", steps[-1])
    text = "\n".join(steps) + f"\n</think>\nThe answer is \\boxed{{{stated}}}."
    return text, stated


class ProgrammaticTeacher(Backend):
    """``model`` names the problem family: ``arith`` (the only one so far)."""

    name = NAME

    def __init__(self, model: str = "arith", slip_rate: float = 0.0, **_: Any):
        if model not in ("arith", "programmatic:arith"):
            raise ValueError(f"programmatic teacher: no worked solutions for {model!r} (known: arith)")
        self.model = "programmatic:arith"
        self.slip_rate = float(slip_rate)

    def _one(self, req: GenRequest) -> Completion:
        t0 = time.perf_counter()
        user = "\n".join(m["content"] for m in req.messages if m.get("role") == "user")
        m = _EXPR.search(user)
        if not m:
            text = "I can only work `arith` problems (Compute <expression>.)."
        else:
            rng = random.Random(req.seed)
            slip = rng.choice([-10, -1, 1, 10]) if rng.random() < self.slip_rate else 0
            text, _ = worked_solution(m.group(1), slip)
        if not req.assistant_prefix:  # no forced "<think>\n": the completion opens the block itself
            text = THINK_PREFIX + text
        toks = list(_TOKEN.finditer(text))
        finish = "stop"
        if len(toks) > req.max_tokens:
            text, finish = text[:toks[req.max_tokens].start()], "length"
            toks = toks[:req.max_tokens]
        return Completion(text=text, prompt_tokens=len(_TOKEN.findall(user)), completion_tokens=len(toks),
                          finish_reason=finish, latency=time.perf_counter() - t0)

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        for i, req in enumerate(requests):
            yield i, self._one(req)

    def model_names(self) -> list[str]:
        return [self.model]

    def describe(self) -> dict[str, Any]:
        return {"backend": NAME, "model": self.model, "slip_rate": self.slip_rate,
                "note": "a program writing exact worked solutions (with deliberate slips), not a language model"}


def register() -> None:
    """Make ``backend: programmatic`` available to the harness runner (teacher generation is an eval run)."""
    BACKENDS.setdefault(NAME, f"{__name__}:ProgrammaticTeacher")


__all__ = ["ProgrammaticTeacher", "worked_solution", "solve", "register", "NAME"]
