"""GRPO rewards: TRL reward functions over the harness's own verifiers (the same code that scores evaluations).

Every function has TRL's signature ``f(prompts, completions, **kwargs) -> list[float]``; ``kwargs`` carries the
dataset columns repeated per completion (``training/grpo.py`` builds them):

  ``gold``      the answer the verifier compares against (math: answer text; choice: the letter)
  ``kind``      ``math`` | ``choice`` | ``code`` (which verifier scores the row)
  ``tests``     code rows: the test list ``harness.verifiers.code`` takes; optional ``mode`` / ``func_name``
  ``completion_ids``  (TRL) token ids, used to tell a completion cut off by ``max_completion_length``

Rewards (the paper's are rule based, section 2.2.2 / 2.3.2):

  ``accuracy``   1.0 when the verifier's verdict is ``correct`` (``Verdict.reward``), else 0.0. Math:
                 ``harness.verifiers.math.verify_many(..., keys=False)``; choice: ``harness.verifiers.choice``;
                 code: ``harness.verifiers.code.score_many``. A completion cut off at the length limit gets the
                 ``length`` finish reason, so a number picked out of a cut-off text is not rewarded (as in eval).
  ``format``     1.0 when the response follows the R1-Zero layout (``harness.verifiers.format.format_ok``).
  ``format_think``  the same for the R1 layout (one think block, then a non-empty answer).
  ``tags``       0.25 per R1-Zero tag present once and in order (open-r1's tag_count_reward; shaping for tiny models).
  ``language``   proportion of target-language words in the CoT (the stage-2 language-consistency reward).
  ``pkg.mod:fn``  any importable function with TRL's signature (a recipe's own reward).
  ``model:PATH`` a Hugging Face sequence-classification model (hub id or local dir) scoring prompt + completion:
                 stage 4's preference reward models [R1 2.3.4]; TRL runs it (``logits[:, 0]``).

Defaults (``default_rewards``): R1-Zero accuracy + format; R1 stages 2 and 4 add ``language``.

The forced ``"<think>\\n"`` prefix: when the prompt ends with it, the completion lacks it; ``make_reward(...,
prefix=...)`` puts it back before every check, accuracy included (``harness.verifiers.format.with_prefix``): the
evaluation scores prefix + completion, so a think block never closed scores 0 in both (the "never close <think>"
hack), and so does an answer given only inside the reasoning.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from harness.verifiers import choice as choicev
from harness.verifiers import code as codev
from harness.verifiers import format as fmt
from harness.verifiers import math as mathv
from harness.verifiers.base import split_think
from harness.verifiers.language import language_consistency

RewardFn = Callable[..., list[float]]
KINDS = ("math", "choice", "code")


def completion_text(completion: Any) -> str:
    """TRL hands a completion as a string (standard prompts) or a list of chat messages (conversational prompts):
    the text is the assistant messages' content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        return "".join(str(m.get("content") or "") for m in completion
                       if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
    return "" if completion is None else str(completion)


def _column(kwargs: dict, name: str, n: int, default: Any = None) -> list:
    col = kwargs.get(name)
    if col is None:
        return [default] * n
    if len(col) != n:
        raise ValueError(f"reward column {name!r} has {len(col)} values for {n} completions")
    return list(col)


def finish_reasons(n: int, completion_ids: Sequence[Sequence[int]] | None, max_completion_length: int | None,
                   eos_ids: set[int] | None = None) -> list[str | None]:
    """``length`` for completions that used the whole budget without ending in EOS; else ``stop`` (None when
    unknown)."""
    if completion_ids is None or not max_completion_length:
        return [None] * n
    out: list[str | None] = []
    for ids in completion_ids:
        ids = list(ids)
        ended = bool(ids) and eos_ids is not None and ids[-1] in eos_ids
        out.append("length" if len(ids) >= max_completion_length and not ended else "stop")
    return out


def _tests(value: Any) -> list:
    """A code row's tests: a list, or its JSON text (how training/grpo.py stores it in an Arrow column)."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return list(value or [])


def accuracy_verdicts(texts: list[str], kwargs: dict, reasons: list[str | None]):
    """One Verdict per completion from the verifier its row's ``kind`` names (math by default)."""
    n = len(texts)
    golds = _column(kwargs, "gold", n) if kwargs.get("gold") is not None else _column(kwargs, "answer", n)
    kinds = _column(kwargs, "kind", n, "math")
    out: list = [None] * n
    by_kind: dict[str, list[int]] = {}
    for i, k in enumerate(kinds):
        k = k or "math"
        if k not in KINDS:
            raise ValueError(f"reward: unknown kind {k!r} (expected one of {KINDS})")
        by_kind.setdefault(k, []).append(i)
    if "math" in by_kind:
        idx = by_kind["math"]
        vs = mathv.verify_many([golds[i] for i in idx], [texts[i] for i in idx], [reasons[i] for i in idx], keys=False)
        for i, v in zip(idx, vs):
            out[i] = v
    if "choice" in by_kind:
        idx = by_kind["choice"]
        vs = choicev.verify_many([str(golds[i]) for i in idx], [texts[i] for i in idx],
                                 [reasons[i] or "stop" for i in idx])
        for i, v in zip(idx, vs):
            out[i] = v
    if "code" in by_kind:
        idx = by_kind["code"]
        tests, modes, funcs = (_column(kwargs, c, n) for c in ("tests", "mode", "func_name"))
        jobs = [codev.CodeJob(texts[i], _tests(tests[i]), reasons[i], mode=modes[i] or "stdin",
                              func_name=funcs[i] or None) for i in idx]
        for i, v in zip(idx, codev.score_many(jobs)):
            out[i] = v
    return out


def make_reward(name: str, *, prefix: str | None = None, template: str = "r1_zero", target_language: str = "en",
                max_completion_length: int | None = None, eos_ids: set[int] | None = None) -> RewardFn:
    """The reward function ``name`` (see ``REWARDS``), bound to the run's settings; its ``__name__`` is ``name``
    (TRL logs it as ``rewards/<name>/mean``)."""
    if name.startswith(MODEL_PREFIX):
        return load_reward_model(name[len(MODEL_PREFIX):])
    if ":" in name:  # a custom reward from a recipe: "package.module:function" with TRL's signature
        import importlib

        mod, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"reward {name!r}: cannot import it ({e})") from None
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)} or package.module:function")

    def accuracy(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        # The evaluation scores prefix + generated text (harness.runner stores it so): with the forced "<think>\n"
        # restored, a think block that never closed has no answer, and an answer only inside it is not an answer.
        texts = [fmt.with_prefix(completion_text(c), prefix) or "" for c in completions]
        reasons = finish_reasons(len(texts), completion_ids, max_completion_length, eos_ids)
        return [v.reward for v in accuracy_verdicts(texts, kwargs, reasons)]

    def format(prompts, completions, **kwargs) -> list[float]:  # noqa: A001 - TRL shows the function's name
        return [fmt.format_reward(completion_text(c), "r1_zero", prefix) for c in completions]

    def format_think(prompts, completions, **kwargs) -> list[float]:
        return [fmt.format_reward(completion_text(c), "think", prefix) for c in completions]

    def tags(prompts, completions, **kwargs) -> list[float]:
        return [fmt.tag_score(completion_text(c), prefix) for c in completions]

    def language(prompts, completions, **kwargs) -> list[float]:
        out = []
        for c in completions:
            reasoning, final = split_think(fmt.with_prefix(completion_text(c), prefix) or "")
            out.append(language_consistency(reasoning if reasoning is not None else final, target_language))
        return out

    fn = {"accuracy": accuracy, "format": format, "format_think": format_think, "tags": tags,
          "language": language}[name]
    fn.__name__ = fn.__qualname__ = name
    return fn


REWARDS = ("accuracy", "format", "format_think", "tags", "language")
MODEL_PREFIX = "model:"
R1_ZERO_REWARDS = ("accuracy", "format")  # [R1 2.2.2]: rule rewards only


def default_rewards(stage: str | None, template: str = "r1_zero") -> list[str]:
    """A GRPO stage's rewards when the recipe lists none. R1-Zero: accuracy + format. R1 stage 2 (``grpo``) and
    stage 4 (``grpo_all``): accuracy + format + the language-consistency reward [R1 2.3.2] (stage 4's preference
    reward models are added by the recipe as ``model:PATH``)."""
    layout = "format" if template == "r1_zero" else "format_think"
    if stage in ("grpo", "grpo_all"):
        return ["accuracy", layout, "language"]
    return ["accuracy", layout]


def load_reward_model(path: str):
    """A Hugging Face sequence-classification model (id or local dir) as a GRPO reward: TRL scores prompt +
    completion with it and takes ``logits[:, 0]`` (its tokenizer is loaded from the same path by TRL)."""
    from transformers import AutoModelForSequenceClassification

    from harness import hub

    try:
        model = AutoModelForSequenceClassification.from_pretrained(hub.local_or_hub(path, "reward model:"))
    except (OSError, ValueError) as e:
        raise ValueError(f"reward model:{path}: cannot load a sequence-classification model ({e})"[:400]) from None
    model.eval()
    return model


def make_rewards(names: Sequence[str] | None, **settings) -> list[RewardFn]:
    """Reward functions for a recipe's ``rewards:`` list, in order (TRL sums them with ``reward_weights``);
    None = R1-Zero's accuracy + format. ``model:PATH`` entries are reward models (nn.Module; TRL runs them)."""
    return [make_reward(n, **settings) for n in (names if names is not None else R1_ZERO_REWARDS)]


__all__ = ["REWARDS", "KINDS", "make_reward", "make_rewards", "completion_text", "accuracy_verdicts",
           "finish_reasons", "default_rewards", "load_reward_model", "MODEL_PREFIX", "R1_ZERO_REWARDS"]
