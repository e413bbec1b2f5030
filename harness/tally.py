"""Compact per-problem outcomes of one task's samples: what the metrics need, a few bytes a sample.

Aggregation streams records through a ``TaskTally`` instead of holding them, so a run of a million samples is
aggregated in megabytes: per problem, arrays of sample index, correctness and an interned answer key.
"""
from __future__ import annotations

from array import array
from collections import Counter
from typing import Any, Hashable, Iterable, Iterator, Sequence

import numpy as np

from .prompting import unclosed_think_stop
from .task import Problem

NO_KEY = -1


def _hashable(key: Any) -> Hashable:
    try:
        hash(key)
        return key
    except TypeError:  # a list or dict key (a task's structured answer) votes by its JSON text
        import json

        return json.dumps(key, sort_keys=True, default=str)


class TaskTally:
    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        self.pos = {p.id: i for i, p in enumerate(self.problems)}
        m = len(self.problems)
        self._idx = [array("q") for _ in range(m)]
        self._ok = [bytearray() for _ in range(m)]
        self._key = [array("q") for _ in range(m)]
        self._keymap: list[dict[Hashable, int]] = [{} for _ in range(m)]
        self.verdicts: Counter = Counter()
        self.n_samples = 0
        self.tokens_sum = 0.0
        self.tokens_n = 0
        self.unclosed_think_stop = 0  # harness.prompting.unclosed_think_stop
        self.context_capped = 0  # records carrying max_tokens_granted

    def add(self, r: dict) -> bool:
        """Count one record; False (and nothing counted) when its problem is not planned."""
        i = self.pos.get(str(r["problem_id"]))
        if i is None:
            return False
        self._idx[i].append(int(r["sample_idx"]))
        self._ok[i].append(r.get("verdict") == "correct")
        key = r.get("answer_key")
        if key is None:
            self._key[i].append(NO_KEY)
        else:
            km = self._keymap[i]
            key = _hashable(key)
            self._key[i].append(km.setdefault(key, len(km)))
        self.verdicts[r.get("verdict")] += 1
        self.n_samples += 1
        tok = r.get("completion_tokens")
        if tok is not None:
            self.tokens_sum += tok
            self.tokens_n += 1
        self.unclosed_think_stop += unclosed_think_stop(r)
        self.context_capped += r.get("max_tokens_granted") is not None
        return True

    def add_all(self, records: Iterable[dict]) -> "TaskTally":
        for r in records:
            self.add(r)
        return self

    def n_of(self, i: int) -> int:
        return len(self._idx[i])

    def outcomes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Problem i's (correct, answer-key id) arrays in sample-index order (key id -1: no answer)."""
        idx = np.frombuffer(self._idx[i], dtype=np.int64) if len(self._idx[i]) else np.zeros(0, np.int64)
        ok = np.frombuffer(bytes(self._ok[i]), dtype=np.uint8).astype(bool)
        key = np.frombuffer(self._key[i], dtype=np.int64) if len(self._key[i]) else np.zeros(0, np.int64)
        order = np.argsort(idx, kind="stable")
        return ok[order], key[order]

    def counts(self) -> Iterator[tuple[Problem, int, int]]:
        """(problem, samples, correct) for each planned problem that has samples, in problem order."""
        for i, p in enumerate(self.problems):
            n = len(self._idx[i])
            if n:
                yield p, n, sum(self._ok[i])

    def mean_tokens(self) -> float | None:
        """Imported runs may carry no token counts: then the mean is unknown (None), not 0."""
        return self.tokens_sum / self.tokens_n if self.tokens_n else None


def cons_at_k_ids(ok: np.ndarray, key: np.ndarray, k: int | None = None) -> float:
    """``metrics.cons_at_k`` over interned key ids: the majority key among the first k samples (ties: the key whose
    first vote came earliest; no answer never wins) is correct if any sample carrying it is."""
    if k is not None:
        ok, key = ok[:k], key[:k]
    voted = key[key != NO_KEY]
    if not voted.size:
        return 0.0
    counts = np.bincount(voted)  # ids are small: interned per problem from 0
    top = np.flatnonzero(counts == counts.max())
    win = top[0] if top.size == 1 else voted[np.isin(voted, top)][0]  # a tie: the earliest first vote wins
    return 1.0 if bool(ok[key == win].any()) else 0.0
