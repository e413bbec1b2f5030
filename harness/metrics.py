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


def pass_at_k_curve(counts: Sequence[tuple[int, int]], kmax: int) -> dict[int, PassAtK]:
    """``pass_at_k_over`` for every k in 1..kmax at once, vectorised: for a problem with n samples and c correct,
    C(n-c, k) / C(n, k) = prod_{j<k} (n-c-j) / (n-j), so one cumulative product gives every k. 500 problems x 2,000
    samples take milliseconds where the per-k loop takes tens of seconds."""
    out: dict[int, PassAtK] = {}
    if kmax < 1:
        return out
    ns = np.asarray([n for n, _ in counts], dtype=np.int64)
    cs = np.asarray([c for _, c in counts], dtype=np.int64)
    if ns.size and ((cs < 0) | (cs > ns)).any():
        raise ValueError("correct count outside [0, n]")
    sums = np.zeros(kmax)
    included = np.zeros(kmax, dtype=np.int64)
    for n in np.unique(ns):
        if n < 1:
            continue
        rows = ns == n
        width = int(min(n, kmax))
        j = np.arange(width)
        fail = np.clip((n - cs[rows])[:, None] - j[None, :], 0, None) / (n - j)[None, :]
        sums[:width] += (1.0 - np.cumprod(fail, axis=1)).sum(axis=0)
        included[:width] += int(rows.sum())
    total = int(ns.size)
    for k in range(1, kmax + 1):
        m = int(included[k - 1])
        out[k] = PassAtK(float(sums[k - 1] / m) if m else None, m, total - m)
    return out


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


# Below this many shared problems no test is run: even an exact one could not reach p < 0.05 with fewer than 5
# (the smallest two-sided sign-flip p-value is 2 / 2^n), and a delta over 3 problems is an anecdote.
MIN_PAIRED_PROBLEMS = 5
# Up to 2^16 sign patterns are enumerated (exact p-value); above that they are sampled.
EXACT_SIGN_FLIP_MAX_N = 16
_CHUNK = 256  # rows of resampling matrices built at once: 14,042 MMLU problems x 10,000 resamples would be 1 GB


@dataclass(frozen=True)
class PairedResult:
    delta: float  # mean(b - a)
    ci: tuple[float, float]
    p_value: float | None  # two-sided; None when no test was run (see ``note``)
    n: int
    test: str = ""  # how p_value was computed
    note: str | None = None  # why there is no p-value


def sign_flip_p(diffs: Sequence[float], resamples: int = 10000, seed: int = 12345) -> tuple[float, str]:
    """Two-sided paired permutation (sign-flip) test of mean(diffs) = 0: under the null each problem's difference is
    as likely to have the opposite sign, so p is the share of the 2^n sign patterns whose |sum| is at least the
    observed |sum|. Enumerated exactly for up to EXACT_SIGN_FLIP_MAX_N non-zero differences, else estimated from
    ``resamples`` random patterns as (1 + hits) / (1 + resamples), which never reports 0. Returns (p, method)."""
    x = np.asarray(diffs, dtype=float)
    x = x[x != 0]  # a zero difference reads the same under either sign
    m = x.size
    if m == 0:
        return 1.0, "sign-flip (exact)"
    observed = abs(float(x.sum()))
    tol = 1e-9 * max(1.0, float(np.abs(x).sum()))  # float sums of the same multiset may differ in the last bits
    if m <= EXACT_SIGN_FLIP_MAX_N:
        signs = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs(signs @ x) >= observed - tol)), "sign-flip (exact)"
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, _CHUNK):
        rows = min(_CHUNK, resamples - start)
        signs = rng.integers(0, 2, size=(rows, m)) * 2.0 - 1.0
        hits += int(np.sum(np.abs(signs @ x) >= observed - tol))
    return (1 + hits) / (1 + resamples), f"sign-flip ({resamples} random patterns)"


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 12345,
                     level: float = 0.95, min_n: int = MIN_PAIRED_PROBLEMS) -> PairedResult:
    """Paired comparison over shared problems of the difference in means (b - a).

    The CI is a percentile bootstrap over problems. The p-value is not taken from that bootstrap: re-centring a
    bootstrap distribution at zero says nothing when every paired difference is the same (its spread is zero, so any
    non-zero delta would look infinitely significant, e.g. from one shared problem). It comes from the paired
    sign-flip permutation test (``sign_flip_p``), exact for small n, which gives 2 / 2^n for n identical non-zero
    differences and 1 for identical runs. With fewer than ``min_n`` problems there is no p-value, and ``note`` says
    why."""
    x = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if x.size == 0:
        return PairedResult(float("nan"), (float("nan"), float("nan")), None, 0, "", "no shared problems")
    d = float(x.mean())
    n = int(x.size)
    if np.all(x == x[0]):
        ci = (d, d)
    else:
        rng = np.random.default_rng(seed)
        means = np.empty(resamples)
        for start in range(0, resamples, _CHUNK):
            rows = min(_CHUNK, resamples - start)
            means[start:start + rows] = x[rng.integers(0, n, size=(rows, n))].mean(axis=1)
        al = (1 - level) / 2
        lo, hi = np.quantile(means, [al, 1 - al])
        ci = (float(lo), float(hi))
    if n < min_n:
        return PairedResult(d, ci, None, n, "", f"only {n} shared problem{'s' if n != 1 else ''}: too few for a "
                                                f"significance test (needs {min_n})")
    p, method = sign_flip_p(x, resamples, seed)
    return PairedResult(d, ci, p, n, method)


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
