"""Training recipes: dataclasses with the paper's defaults, YAML files that override them.

Defaults here are DeepSeek-R1's where the paper (or the later DeepSeek publication it is quoted from, see
/work/shared/PAPER.md "secondhand") gives them; recipes in ``training/recipes/*.yaml`` only override. Sources:

  [R1]   DeepSeek-R1 v1 paper (arXiv 2501.12948): GRPO, KL to a reference (k3 estimator), clip epsilon, rule rewards,
         R1-Zero template, four stages, stage 3 = 2 epochs on ~800k samples, eval T 0.6 / top-p 0.95.
  [R1-2] the later DeepSeek publication (secondhand): lr 3e-6, KL coefficient 0.001, temperature 1.0, G = 16,
         32 questions per step, max length 32,768, reference refresh every 400 steps.
  [TRL]  TRL 1.16 GRPOConfig: its defaults differ (beta 0, loss "dapo", lr 1e-6), so every paper value is set here.

A recipe YAML::

    name: cpu_demo
    model: embedded                 # HF id[@rev], local dir, .gguf path, or embedded
    out: runs/train/cpu_demo
    stages: [grpo]                  # pipeline order: cold_start | grpo | rejection_sft | grpo_all (see pipeline.py)
    grpo: {data: {hf: ..., path: ..., format: ...}, num_generations: 4, ...}   # GRPOSettings fields
    sft: {...}                      # SFTSettings fields
    rejection: {...}                # RejectionSettings fields
    eval: {tasks: [arith], limit: 20, ...}              # EvalSettings fields
    stage_overrides: {grpo_all: {rewards: [accuracy, format]}}   # per-stage GRPO/SFT overrides
    cold_start_data: {hf: open-r1/Mixture-of-Thoughts, config: math, path: LOCAL_COPY}   # trace dataset
    non_reasoning_data: {...}       # stage 3's non-reasoning SFT data (trace dataset)
    decontaminate: true             # every dataset vs every benchmark (training/decontam.py), n = decontam_ngram
    allow_train_on_eval: false      # training on a task in eval.tasks is refused unless true
    launch: {config_file: training/accelerate/zero3.yaml, num_processes: 7}   # checked by --dry-run

Data sources are training/datasets.py's (``hf`` + ``path`` fallback + ``format`` / ``columns``).
Overrides from the CLI are dotted keys: ``{"grpo.max_steps": 2, "out": "/tmp/x"}``.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.errors import UserError

from harness.config import MATH_INSTRUCTION, PAPER_TEMPERATURE, PAPER_TOP_P, THINK_PREFIX  # noqa: F401 - re-exported

RECIPES_DIR = Path(__file__).parent / "recipes"

# R1-Zero template [R1, Table 1]; {prompt} is the question.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:"
)


@dataclass
class GRPOSettings:
    """One GRPO stage. Fields named like TRL's GRPOConfig go there unchanged; ``extra`` passes any other field."""

    data: Any = None  # a prompt dataset (training/datasets.py source: {hf, path, format, columns, ...}): what trains
    task: str | None = None  # or a harness task's problems (toy `arith`; a benchmark only with allow_train_on_eval)
    train_offset: int = 0  # task problems [train_offset : train_offset + train_limit] train
    train_limit: int | None = None
    train_filter: dict[str, Any] = field(default_factory=dict)  # keep problems whose meta matches, e.g. {terms: 2}
    template: str = "r1_zero"  # r1_zero: the paper's raw-text template; chat: the task's messages + chat template
    think_prefix: bool = True  # end the prompt with "<think>\n" (DeepSeek's usage note); rewards restore it
    rewards: list[str] | None = None  # None: rewards.default_rewards (R1-Zero: accuracy + format; R1 stages 2 and 4
    #                                   add language consistency [R1 2.3.2]); "model:PATH" = a reward model
    reward_weights: list[float] | None = None  # None = all 1.0 (TRL sums the weighted rewards)
    target_language: str = "en"  # for the `language` reward [R1 2.3.2]
    learning_rate: float = 3e-6  # [R1-2]
    beta: float = 0.001  # KL coefficient [R1-2]; TRL's k3 estimator is the paper's unbiased estimator [R1 eq. 2]
    loss_type: str = "grpo"  # per-sequence mean then group mean, as in the paper's objective [R1 eq. 1]
    epsilon: float = 0.2  # PPO clip; the paper does not print it, 0.2 is the GRPO (DeepSeekMath) value
    num_generations: int = 16  # G [R1-2]
    scale_rewards: str = "group"  # advantage = (r - mean) / std within the group [R1 eq. 3]
    num_iterations: int = 1  # one policy update per generation batch (pi_old = pi_theta)
    temperature: float = 1.0  # [R1-2] sampling temperature during RL
    top_p: float = 1.0
    max_completion_length: int = 32768  # [R1-2] (later 65,536)
    per_device_train_batch_size: int = 16  # completions per device per step
    gradient_accumulation_steps: int = 32  # 32 questions x 16 samples per step [R1-2] on one device
    max_steps: int = 10400  # [R1-2] ~10,400 steps for R1-Zero
    num_train_epochs: float = 1.0
    sync_ref_model: bool = True  # reference refresh [R1-2]: every 400 steps, fully replaced (alpha 1.0)
    ref_model_sync_steps: int = 400
    ref_model_mixup_alpha: float = 1.0
    mask_truncated_completions: bool = False
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    logging_steps: int = 1
    save_steps: int = 200
    save_strategy: str = "steps"
    seed: int = 0
    bf16: bool = True
    gradient_checkpointing: bool = True
    use_vllm: bool = False
    vllm_mode: str = "server"  # TRL: `trl vllm-serve` on separate GPUs, trainer on the rest
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SFTSettings:
    """An SFT stage (cold start, stage 3, distillation). Fields go to TRL's SFTConfig unchanged."""

    learning_rate: float = 1e-5
    num_train_epochs: float = 2.0  # [R1 2.3.3] "fine-tune ... for two epochs"
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 8
    max_length: int | None = 32768
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03  # transformers 5: a float in [0, 1) is a ratio of the total steps
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 1
    save_strategy: str = "no"
    assistant_only_loss: bool = False  # set True for chat templates with {% generation %} markers
    completion_only_loss: bool | None = None
    packing: bool = False
    seed: int = 0
    bf16: bool = True
    gradient_checkpointing: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RejectionSettings:
    """Stage 3 rejection sampling [R1 2.3.3]: sample prompts from the stage-2 checkpoint with the harness runner,
    keep correct, readable samples (training/curation.py: the same funnel distillation uses), SFT on them."""

    data: Any = None  # the prompt dataset sampled (training/datasets.py source)
    task: str | None = None  # or a harness task (toy `arith`)
    limit: int | None = None  # the first `limit` prompts (the runner's slice)
    samples_per_prompt: int = 4
    temperature: float = PAPER_TEMPERATURE
    top_p: float = PAPER_TOP_P
    max_tokens: int = 32768
    backend: str = "hf"  # hf | vllm | llamacpp | openai: harness backends
    batch_size: int = 16
    filters: list | None = None  # training.curation filter spec; None = its defaults (truncated, correct, mixed_language, ...)
    report_only: list[str] = field(default_factory=list)  # filters counted but not applied (CPU demo: correct)
    max_per_prompt: int | None = None  # keep at most this many kept samples per problem
    sft_from: str = "base"  # base: the paper fine-tunes DeepSeek-V3-Base on the ~800k samples; previous: stage 2's
    judge: dict[str, Any] | None = None  # generative judge {model, base_url, ...} (harness/judge.py) for answers no
    #                                       rule checks [R1 2.3.3]; None = rule verifiers only


@dataclass
class EvalSettings:
    """Pre/post evaluation with the harness runner on a held-out slice (the first ``limit`` problems)."""

    enabled: bool = True
    tasks: list[str] = field(default_factory=lambda: ["math500"])
    limit: int | None = 50
    n: int | None = None
    max_tokens: int = 32768
    temperature: float = PAPER_TEMPERATURE
    top_p: float = PAPER_TOP_P
    backend: str = "hf"
    batch_size: int = 16
    before: bool = True  # also evaluate the starting model


@dataclass
class Recipe:
    name: str = "recipe"
    model: str = "embedded"
    out: str = "runs/train/recipe"
    dtype: str = "auto"
    device: str = "auto"
    threads: int | None = None
    stages: list[str] = field(default_factory=lambda: ["cold_start", "grpo", "rejection_sft", "grpo_all"])
    cold_start_data: Any = None  # a trace dataset (training/datasets.py source), or "builtin:arith"
    cold_start_limit: int | None = None
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    rejection: RejectionSettings = field(default_factory=RejectionSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    stage_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    non_reasoning_data: Any = None  # stage 3's ~200k non-reasoning SFT samples: a trace dataset source, if any
    data_dir: str | None = None  # benchmark mirror (R1_DATA_DIR) for decontamination and evaluation
    decontaminate: bool = True  # drop training rows overlapping any benchmark (training/decontam.py)
    decontam_ngram: int = 8  # open-r1's n
    allow_train_on_eval: bool = False  # permit training on a task eval.tasks also scores (refused otherwise)
    launch: dict[str, Any] = field(default_factory=dict)  # {config_file, num_processes, num_machines}: how the
    #                          GPU stages are launched (accelerate); checked and printed by the dry-run

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"grpo": GRPOSettings, "sft": SFTSettings, "rejection": RejectionSettings, "eval": EvalSettings}


def _build(cls, data: Mapping[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    return cls(**data)


def recipe_from_dict(data: Mapping[str, Any], where: str = "recipe") -> Recipe:
    data = dict(data or {})
    sections = {k: _build(c, data.pop(k) or {}, f"{where}: {k}") for k, c in _SECTIONS.items() if k in data}
    r = _build(Recipe, data, where)
    for k, v in sections.items():
        setattr(r, k, v)
    return r


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


class RecipeError(UserError, ValueError):
    """A recipe that cannot be used (unknown field, not a mapping, no such file): one line for the CLI."""


def resolve_recipe_path(path: str | Path) -> Path:
    """A path, or a bare name of a shipped recipe (``cpu_demo`` -> training/recipes/cpu_demo.yaml)."""
    p = Path(path)
    if p.is_file():
        return p
    shipped = RECIPES_DIR / (p.name if p.suffix else f"{p.name}.yaml")
    if shipped.is_file():
        return shipped
    raise RecipeError(f"recipe {path}: no such file (shipped recipes: "
                            f"{', '.join(sorted(x.stem for x in RECIPES_DIR.glob('*.yaml')))})")


def load_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Recipe from a YAML file (or defaults when None), then dotted ``overrides`` (None values are ignored)."""
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        p = resolve_recipe_path(path)
        where = str(p)
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise RecipeError(f"{p}: a recipe is a YAML mapping")
    data = copy.deepcopy(data)
    for k, v in (overrides or {}).items():
        if v is not None:
            _set_dotted(data, k, v)
    return recipe_from_dict(data, where)


def with_overrides(settings, overrides: Mapping[str, Any] | None):
    """A copy of a settings dataclass with ``overrides`` applied (stage_overrides)."""
    if not overrides:
        return settings
    names = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise RecipeError(f"stage override: unknown field(s) {', '.join(unknown)} for {type(settings).__name__}")
    return dataclasses.replace(settings, **overrides)


__all__ = ["R1_ZERO_TEMPLATE", "GRPOSettings", "SFTSettings", "RejectionSettings", "EvalSettings", "Recipe",
           "load_recipe", "recipe_from_dict", "resolve_recipe_path", "with_overrides", "RECIPES_DIR"]
