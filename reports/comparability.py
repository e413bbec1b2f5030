"""Is a measured number comparable to the paper's? The facts a report must put beside (or instead of) a paper number.

Pure functions over a run's manifest and a task's results.json entry, so the report, `r1 compare` and tests share
one reading:

* Public tests only: LiveCodeBench on the examples parsed from the statements and Codeforces on DeepCoder's tests
  (mostly the statement's sample) say ``hidden_tests_absent: true``. A program that passes the samples may fail the
  hidden tests, so such a pass@1 or rating is an upper bound of the paper's metric, never beside it: the report's
  "paper in CI" reads "not comparable" and a warning box says why at the top and in the task's section.
* Protocol: the paper samples k completions per problem at temperature 0.6, top-p 0.95, up to 32,768 tokens, with
  the ``<think>\\n`` prefix and no system prompt (harness.config.PAPER_GENERATION); the task module's ``default_k`` is
  the k of that protocol for the benchmark. Every field a run differs in is named per task, plus a fixed context
  length too small to hold 32,768 generated tokens.
* Prompt health (written by the runner): ``unclosed_think_stop_rate`` above one half means most samples stopped on
  their own inside a ``<think>`` that never closed (a plain chat model given the think prefix): the warning names
  ``--think-prefix off``. ``context_capped_samples`` counts samples whose budget the context cut below --max-tokens.
* Codeforces: which estimator produced the rating (CodeElo standings vs problem-difficulty Elo) and which problems
  were skipped as interactive, and why.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from harness.config import PAPER_GENERATION

NOT_COMPARABLE = "not comparable"
UNCLOSED_THINK_WARN = 0.5  # share of samples above which the think prefix is the likely cause
# results.json keys this module turns into warnings; the report's table of task-specific numbers leaves them out.
WARNED_KEYS = frozenset({"hidden_tests_absent", "unclosed_think_stop_rate", "context_capped_samples",
                         "interactive_skipped"})


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def public_tests_only(res: dict | None) -> str | None:
    """Why the task's numbers are not comparable to the paper's (scored on public/sample tests only), or None."""
    if not res or res.get("hidden_tests_absent") is not True:
        return None
    src = res.get("tests_source")
    return "scored on public/sample tests only" + (f" ({src})" if src else " (hidden tests absent)")


def think_prefix(manifest: dict) -> tuple[str, bool | None, str | None] | None:
    """(mode, enabled, reason) of the think prefix: the manifest's ``think_prefix`` record, or for older manifests the
    bool in the generation settings (mode "on"/"off", no reason). None when unknown (imported runs)."""
    tp = manifest.get("think_prefix")
    if isinstance(tp, dict):
        enabled = tp.get("enabled")
        return (str(tp.get("mode") or "?"), enabled if isinstance(enabled, bool) else None,
                str(tp["reason"]) if tp.get("reason") else None)
    gen = manifest.get("generation")
    if isinstance(gen, dict) and isinstance(gen.get("think_prefix"), bool):
        return ("on" if gen["think_prefix"] else "off", gen["think_prefix"], None)
    return None


def think_prefix_text(manifest: dict) -> str | None:
    tp = think_prefix(manifest)
    if tp is None:
        return None
    mode, enabled, reason = tp
    state = {True: "on", False: "off", None: "unknown"}[enabled]
    text = f"think prefix {state}" + (f" (--think-prefix {mode})" if mode not in ("on", "off") or reason else "")
    return text + (f": {reason}" if reason else "")


@lru_cache(maxsize=None)
def paper_k(task: str) -> int | None:
    """Samples per problem in the paper's protocol for ``task``: the task module's ``default_k``."""
    try:
        from harness.task import get_task

        return _int(get_task(task).default_k)
    except Exception:  # noqa: BLE001 - an unknown or unloadable task has no protocol k to compare against
        return None


def _context_length(manifest: dict) -> int | None:
    info = manifest.get("model_info")
    opts = info.get("options") if isinstance(info, dict) else None
    return _int(opts.get("n_ctx")) if isinstance(opts, dict) else None


def protocol_diffs(manifest: dict, task: str | None = None, requested_n: int | None = None) -> list[str]:
    """Every way the run (and, given ``task``, that task) departs from the paper's protocol, as "field X (paper Y)".

    Generation fields come from ``manifest["generation"]`` and are compared with every field of PAPER_GENERATION, so
    a new protocol knob is flagged without touching this function; the think prefix is reported with its reason."""
    gen = manifest.get("generation")
    if not isinstance(gen, dict):
        return ["generation settings unknown (imported run)"] if manifest.get("source") == "import" else []
    out = []
    for key, want in PAPER_GENERATION.to_dict().items():
        if key not in gen or gen.get(key) == want:
            continue
        if key == "think_prefix":
            tp = think_prefix(manifest)
            why = f"; {tp[2]}" if tp and tp[2] else ""
            out.append(f"think prefix {'on' if gen.get(key) else 'off'} (paper on{why})")
        elif key == "system_prompt":
            out.append("system prompt set (paper none)" if want is None else f"system prompt {gen.get(key)!r}")
        else:
            out.append(f"{key} {gen.get(key)} (paper {want})")
    n_ctx = _context_length(manifest)
    if n_ctx is not None and n_ctx < PAPER_GENERATION.max_tokens:
        out.append(f"context length {n_ctx} tokens (paper: prompt + {PAPER_GENERATION.max_tokens} generated)")
    if task is not None and requested_n is not None:
        k = paper_k(task)
        if k is not None and requested_n != k:
            out.append(f"k {requested_n} samples per problem (protocol {k})")
    return out


def task_warnings(res: dict | None) -> list[str]:
    """Warnings about a task's results that change how its numbers read (prompt health, skipped problems)."""
    if not res:
        return []
    out = []
    rate = res.get("unclosed_think_stop_rate")
    if isinstance(rate, (int, float)) and rate > UNCLOSED_THINK_WARN:
        out.append(f"{100 * rate:.0f}% of samples stopped on their own with their <think> block never closed: the "
                   "model does not write </think> (a plain chat model given the think prefix?); its score reads as "
                   "truncated, not as its answers. Re-run with `--think-prefix off`.")
    capped = _int(res.get("context_capped_samples"))
    if capped:
        out.append(f"{capped} samples had their generation budget cut below --max-tokens by a full context "
                   "(`max_tokens_granted` on the record): their truncations are the context's, not the model's; "
                   "raise the backend's context length.")
    if "rating_method" in res and res.get("rating") is None:
        out.append("no Codeforces rating: neither a CodeElo standings file nor problem difficulty ratings were "
                   "available to estimate one.")
    skipped = _int(res.get("interactive_skipped"))
    if skipped:
        ids = res.get("interactive_skipped_ids")
        which = f": {', '.join(map(str, ids[:12]))}{', …' if len(ids) > 12 else ''}" if isinstance(ids, list) and ids else ""
        out.append(f"{skipped} interactive problems skipped (not generated, not scored; fixed stdin/stdout tests "
                   f"cannot judge an interactive protocol){which}.")
    return out


def rating_estimator(res: dict | None) -> str | None:
    """How the Codeforces rating was estimated, in words, or None when the task has no rating."""
    if not res or "rating_method" not in res:
        return None
    method = res.get("rating_method")
    if method == "codeelo_standings":
        n = res.get("rating_contests")
        return f"CodeElo standings estimator ({n} contests)" if n is not None else "CodeElo standings estimator"
    if method == "problem_difficulty_elo":
        n, clamped = res.get("rating_problems"), res.get("rating_clamped")
        extra = ", clamped to the rating range" if clamped else ""
        return f"problem-difficulty Elo estimator ({n} rated problems{extra})"
    return "no rating: no standings file and no problem ratings" if method is None else str(method)


def ci_cell(inside: str, res: dict | None, diffs: list[str]) -> str:
    """The "paper in CI" cell: "not comparable" for public-tests-only scores; otherwise the CI verdict, with the
    protocol fields that differ named beside it."""
    if public_tests_only(res):
        return f"{NOT_COMPARABLE} (public tests only)"
    if diffs and inside != "—":
        return f"{inside}; protocol differs: {', '.join(diff_name(d) for d in diffs)}"
    return inside


def diff_name(diff: str) -> str:
    """The field a protocol_diffs entry is about ("max_tokens", "think prefix", "k", "settings unknown")."""
    if diff.startswith("generation settings unknown"):
        return "settings unknown"
    if diff.startswith(("think prefix", "system prompt", "context length")):
        return " ".join(diff.split(" ")[:2])
    return diff.split(" ")[0]
