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
