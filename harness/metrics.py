"""Metrics over per-problem sample outcomes. Pure numpy, no I/O.

pass@k is the unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k) for a problem with n samples of
which c are correct. pass@1 reduces to c/n, the paper's "mean correctness over k samples". A problem with fewer than
k samples has no unbiased pass@k: it is left out of that k and counted, never silently treated as if it had k.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem; requires 1 <= k <= n."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n (k={k}, n={n})")
    if c < 0 or c > n:
        raise ValueError(f"correct count {c} outside [0, {n}]")
    if n - c < k:
        return 1.0
    # Product form avoids huge binomials: prod_{i=n-c+1}^{n} (1 - k/i).
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass(frozen=True)
class PassAtK:
    value: float | None  # mean over problems that have >= k samples (None if none do)
    n_problems: int  # problems included
    n_excluded: int  # problems with fewer than k samples


def pass_at_k_over(counts: Sequence[tuple[int, int]], k: int) -> PassAtK:
    vals = [pass_at_k(n, c, k) for n, c in counts if n >= k]
    excluded = sum(1 for n, _ in counts if n < k)
    return PassAtK(float(np.mean(vals)) if vals else None, len(vals), excluded)


def majority_vote(keys: Sequence[Hashable | None]) -> Hashable | None:
    """Most frequent non-None key. Ties go to the key whose first vote came earliest (lowest sample index), so the
    outcome is deterministic and does not depend on hashing or string order. None (no answer) never wins."""
    counts: Counter = Counter()
    first: dict = {}
    for i, k in enumerate(keys):
        if k is None:
            continue
        counts[k] += 1
        first.setdefault(k, i)
    if not counts:
        return None
    return max(counts, key=lambda k: (counts[k], -first[k]))


def cons_at_k(keys: Sequence[Hashable | None], correct: Sequence[bool], k: int | None = None) -> float:
    """1.0 if the majority answer among the first k samples is a correct one, else 0.0.

    ``correct[i]`` says whether sample i was judged correct; the winning key is correct if any sample carrying it
    was (equivalent answers share a key, so they are judged alike)."""
    if k is not None:
        keys, correct = keys[:k], correct[:k]
    win = majority_vote(keys)
    if win is None:
        return 0.0
    return 1.0 if any(c for key, c in zip(keys, correct) if key == win) else 0.0


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, seed: int = 12345, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over problems (problems are the unit that is resampled)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class PairedResult:
    delta: float  # mean(b - a)
    ci: tuple[float, float]
    p_value: float  # two-sided
    n: int


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 12345,
                     level: float = 0.95) -> PairedResult:
    """Paired bootstrap over shared problems of the difference in means (b - a).

    The p-value is two-sided: twice the smaller tail mass of the bootstrap distribution of the delta re-centred
    at zero (the null of no difference), floored at 1/resamples."""
    x = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if x.size == 0:
        return PairedResult(float("nan"), (float("nan"), float("nan")), float("nan"), 0)
    d = float(x.mean())
    if np.allclose(x, x[0]):
        return PairedResult(d, (d, d), 1.0 if d == 0 else 0.0, int(x.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    al = (1 - level) / 2
    lo, hi = np.quantile(means, [al, 1 - al])
    centred = means - d
    p = float(np.mean(np.abs(centred) >= abs(d)))
    return PairedResult(d, (float(lo), float(hi)), max(p, 1.0 / resamples), int(x.size))


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test for paired binary outcomes: (a-only correct, b-only correct, two-sided p)."""
    from math import comb

    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return only_a, only_b, 1.0
    k = min(only_a, only_b)
    p = 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n
    return only_a, only_b, min(1.0, p)
