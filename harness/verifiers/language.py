"""Language consistency of a chain of thought: the paper's stage-2 reward and the distillation mixed-language filter.

DeepSeek-R1 (section 2.3.2) adds a language-consistency reward "calculated as the proportion of target language words
in the CoT". The paper does not say how words or languages are detected; here both are defined by Unicode script,
which needs no model and is deterministic:

* A **word** is a maximal run of letters (Unicode category ``L*``, plus combining marks ``M*`` inside a run) of one
  script. Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) count **one word per
  character**: a Chinese word is one or two characters, so this is the closest count without a segmenter.
  Digits, punctuation, symbols and whitespace are not words.
* A word's **language** is its script; each target language maps to the scripts it is written in: ``en`` (and
  other Latin-script languages) = Latin; ``zh`` = Han; ``ja`` = Han + Hiragana + Katakana; ``ko`` = Hangul (+ Han);
  ``ru`` = Cyrillic; ``ar`` = Arabic; ... (``SCRIPTS``).
* Greek words of one or two letters are **neutral** unless the target is Greek: in a math CoT they are variables
  (alpha, pi, theta), not a language switch.

So an English CoT that slips into Chinese loses one point of share per Chinese character, and LaTeX commands
(``\\frac``) count as Latin. The CoT is the text given; callers pass the reasoning part (``split_think``).
A text with no words at all scores 0.0 (nothing in the target language) but is not "mixed".
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

SCRIPTS: dict[str, frozenset[str]] = {
    **{lang: frozenset({"LATIN"}) for lang in ("en", "fr", "de", "es", "it", "pt", "nl", "vi", "id", "tr", "pl")},
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "ko": frozenset({"HANGUL", "CJK"}),
    "ru": frozenset({"CYRILLIC"}),
    "uk": frozenset({"CYRILLIC"}),
    "ar": frozenset({"ARABIC"}),
    "he": frozenset({"HEBREW"}),
    "el": frozenset({"GREEK"}),
    "hi": frozenset({"DEVANAGARI"}),
    "th": frozenset({"THAI"}),
}
# Scripts without spaces between words: one word per character.
_UNSPACED = frozenset({"CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR"})
# Unicode character-name prefixes that differ from the script's name.
_NAME_ALIASES = {"KANGXI": "CJK", "IDEOGRAPHIC": "CJK", "HALFWIDTH": None, "FULLWIDTH": None}
DEFAULT_MIXED_THRESHOLD = 0.95


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str | None:
    """Script of a letter (``LATIN``, ``CJK``, ``CYRILLIC``, ...), or None for anything that is not a letter."""
    cat = unicodedata.category(ch)
    if not cat.startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return "UNKNOWN"
    first = name.split(" ", 1)[0]
    if first in _NAME_ALIASES:
        alias = _NAME_ALIASES[first]
        if alias is not None:
            return alias
        # FULLWIDTH LATIN CAPITAL LETTER A / HALFWIDTH KATAKANA LETTER: the script is the next word
        parts = name.split(" ")
        return parts[1] if len(parts) > 1 else "UNKNOWN"
    return first


def words(text: Any) -> list[tuple[str, str]]:
    """(script, word) pairs of ``text`` by the definition in the module docstring."""
    if not isinstance(text, str):
        return []
    out: list[tuple[str, str]] = []
    cur_script: str | None = None
    cur: list[str] = []

    def flush():
        if cur:
            out.append((cur_script, "".join(cur)))  # type: ignore[arg-type]
            cur.clear()

    for ch in text:
        s = script_of(ch)
        if s is None:
            if cur and unicodedata.category(ch).startswith("M"):
                cur.append(ch)  # combining mark continues the word (accents, Devanagari vowel signs)
                continue
            flush()
            cur_script = None
            continue
        if s in _UNSPACED:
            flush()
            out.append((s, ch))
            cur_script = None
            continue
        if s != cur_script:
            flush()
            cur_script = s
        cur.append(ch)
    flush()
    return out


def _scripts(target: str) -> frozenset[str]:
    if target not in SCRIPTS:
        raise ValueError(f"unknown target language {target!r}; known: {', '.join(sorted(SCRIPTS))}")
    return SCRIPTS[target]


def language_counts(text: Any, target: str = "en") -> tuple[int, int]:
    """(target-language words, counted words) of ``text``."""
    scripts = _scripts(target)
    hit = total = 0
    for script, word in words(text):
        if script == "GREEK" and "GREEK" not in scripts and len(word) <= 2:
            continue  # math variables
        total += 1
        hit += script in scripts
    return hit, total


def language_consistency(text: Any, target: str = "en") -> float:
    """Proportion of ``target``-language words in ``text`` (0.0 when it has no words). The stage-2 reward."""
    hit, total = language_counts(text, target)
    return hit / total if total else 0.0


def is_mixed_language(text: Any, target: str = "en", threshold: float = DEFAULT_MIXED_THRESHOLD) -> bool:
    """True when ``text`` has words and fewer than ``threshold`` of them are in ``target`` (distillation filter)."""
    hit, total = language_counts(text, target)
    return total > 0 and hit / total < threshold


__all__ = ["SCRIPTS", "DEFAULT_MIXED_THRESHOLD", "script_of", "words", "language_counts", "language_consistency",
           "is_mixed_language"]
