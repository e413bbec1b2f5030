import itertools
from math import comb

import numpy as np
import pytest

from harness import metrics


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    """Probability that a random k-subset (without replacement) of the samples contains a correct one."""
    subsets = list(itertools.combinations(range(len(outcomes)), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("seed", range(20))
def test_pass_at_k_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 11))
    outcomes = list(rng.random(n) < rng.random())
    c = sum(outcomes)
    for k in range(1, n + 1):
        assert metrics.pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(outcomes, k), abs=1e-12)


def test_pass_at_1_is_mean_correctness():
    assert metrics.pass_at_k(64, 17, 1) == pytest.approx(17 / 64)


def test_pass_at_k_large_n_no_overflow():
    v = metrics.pass_at_k(1000, 3, 500)
    assert v == pytest.approx(1 - comb(997, 500) / comb(1000, 500))


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError):
        metrics.pass_at_k(3, 1, 4)


def test_pass_at_k_over_excludes_and_reports_short_problems():
    r = metrics.pass_at_k_over([(4, 1), (2, 2), (4, 0)], 3)
    assert r.n_problems == 2 and r.n_excluded == 1
    assert r.value == pytest.approx((metrics.pass_at_k(4, 1, 3) + 0.0) / 2)
    assert metrics.pass_at_k_over([(1, 1)], 2).value is None


def test_majority_vote_equivalence_keys_and_tiebreak():
    # keys are already equivalence classes: "1/2" and "0.5" share the key "q:1/2"
    assert metrics.majority_vote(["q:1/2", "q:3", "q:1/2", None, None, None]) == "q:1/2"
    # tie: the key whose first vote came earliest wins, independent of string order
    assert metrics.majority_vote(["b", "a", "a", "b"]) == "b"
    assert metrics.majority_vote(["a", "b", "b", "a"]) == "a"
    assert metrics.majority_vote([None, None]) is None


def test_cons_at_k_uses_correctness_of_winning_class():
    keys = ["x", "y", "y", "x", "y"]
    correct = [True, False, False, True, False]
    assert metrics.cons_at_k(keys, correct) == 0.0
    assert metrics.cons_at_k(keys, correct, k=2) == 1.0  # tie x/y at k=2 -> earliest (x) wins
    assert metrics.cons_at_k([None, None], [False, False]) == 0.0


def test_bootstrap_ci_is_seeded_and_brackets_mean():
    rng = np.random.default_rng(0)
    vals = rng.random(50)
    a = metrics.bootstrap_ci(vals, 1000, seed=7)
    b = metrics.bootstrap_ci(vals, 1000, seed=7)
    assert a == b
    assert a[0] < vals.mean() < a[1]
    assert metrics.bootstrap_ci([0.5]) == (0.5, 0.5)


def test_paired_bootstrap_detects_real_difference_and_not_noise():
    rng = np.random.default_rng(1)
    a = rng.random(200) < 0.4
    b = a.copy()
    flip = rng.choice(200, 40, replace=False)
    b[flip] = True  # b is better on up to 40 problems
    res = metrics.paired_bootstrap(a.astype(float), b.astype(float))
    assert res.delta > 0 and res.ci[0] > 0 and res.p_value < 0.01
    same = metrics.paired_bootstrap(a.astype(float), a.astype(float))
    assert same.delta == 0 and same.p_value == 1.0


def test_mcnemar_exact():
    a = [True] * 10 + [False] * 10
    b = [True] * 10 + [True] * 2 + [False] * 8
    only_a, only_b, p = metrics.mcnemar(a, b)
    assert (only_a, only_b) == (0, 2)
    assert p == pytest.approx(0.5)


# --- paired significance: never from nothing --------------------------------------------------------------------
def _exact_sign_flip(diffs):
    """Brute force over every sign pattern, written independently of harness.metrics."""
    import itertools

    obs = abs(sum(diffs))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(diffs)):
        total += 1
        hits += abs(sum(s * d for s, d in zip(signs, diffs))) >= obs - 1e-9
    return hits / total


@pytest.mark.parametrize("diffs", [
    [1.0] * 5, [1.0] * 8, [0.5, 0.25, -0.125, 1.0, 0.75, 0.5], [1, -1, 1, 1, 0, 1, 1, -1, 1, 1],
    [0.125, 0.375, -0.25, 0.5, 0.0, 0.625, 0.125, -0.125, 0.25, 0.5, 0.75, 0.125],
])
def test_paired_p_matches_exact_sign_flip_permutation(diffs):
    a = np.zeros(len(diffs))
    b = np.asarray(diffs, dtype=float)
    res = metrics.paired_bootstrap(a, b)
    assert res.p_value == pytest.approx(_exact_sign_flip(list(b)), abs=1e-12) and res.test == "sign-flip (exact)"
    # the sampled test agrees with the enumeration (Monte Carlo error of 20,000 patterns ~ 0.004)
    old = metrics.EXACT_SIGN_FLIP_MAX_N
    try:
        metrics.EXACT_SIGN_FLIP_MAX_N = 0
        p_mc, method = metrics.sign_flip_p(b, resamples=20000, seed=3)
    finally:
        metrics.EXACT_SIGN_FLIP_MAX_N = old
    assert "random" in method and p_mc == pytest.approx(_exact_sign_flip(list(b)), abs=0.015)


def test_identical_differences_are_not_significant_from_one_problem():
    # The old re-centred bootstrap gave p = 1/resamples here: one shared problem "significant".
    one = metrics.paired_bootstrap([0.0], [1.0])
    assert one.delta == 1.0 and one.p_value is None and "only 1 shared problem" in one.note
    five = metrics.paired_bootstrap([0.0] * 5, [1.0] * 5)
    assert five.p_value == pytest.approx(2 / 2**5)  # the smallest p 5 problems can give
    same = metrics.paired_bootstrap([0.3, 0.5, 1.0, 0.0, 0.25, 0.5], [0.3, 0.5, 1.0, 0.0, 0.25, 0.5])
    assert same.delta == 0 and same.p_value == 1.0 and same.ci == (0.0, 0.0)
    empty = metrics.paired_bootstrap([], [])
    assert empty.n == 0 and empty.p_value is None


def test_sign_flip_on_binary_pairs_is_mcnemar():
    # 10 problems only B solves, 4 only A, 20 both or neither: 14 discordant pairs, enumerated exactly.
    a = np.array([False] * 10 + [True] * 4 + [True] * 12 + [False] * 8)
    b = np.array([True] * 10 + [False] * 4 + [True] * 12 + [False] * 8)
    res = metrics.paired_bootstrap(a.astype(float), b.astype(float))
    assert res.p_value == pytest.approx(metrics.mcnemar(list(a), list(b))[2], abs=1e-12)


def test_large_paired_sample_is_chunked_and_seeded():
    rng = np.random.default_rng(2)
    a = (rng.random(3000) < 0.5).astype(float)
    b = np.where(rng.random(3000) < 0.1, 1.0, a)
    r1, r2 = metrics.paired_bootstrap(a, b, resamples=2000), metrics.paired_bootstrap(a, b, resamples=2000)
    assert r1 == r2 and r1.ci[0] < r1.delta < r1.ci[1] and r1.p_value == pytest.approx(1 / 2001)
