"""`--limit` on MMLU is stratified by subject (issue 13): never "the first subjects alphabetically"."""
from collections import Counter

import pytest

from harness.task import allocate, get_task
from tasks.mmlu import MMLU


def test_limit_covers_every_subject_proportionally(data_dir):
    task = MMLU()
    full = task.problems(data_dir)
    sizes = Counter(p.meta["subject"] for p in full)
    assert len(sizes) == 57 and len(full) == 14042
    sub = task.problems(data_dir, 200)
    got = Counter(p.meta["subject"] for p in sub)
    assert len(sub) == 200 and set(got) == set(sizes)  # the first 200 rows would be 2 subjects
    for s, n in sizes.items():
        # one each, then the other 143 in proportion to size (largest remainder: within one of the quota)
        assert abs(got[s] - (1 + 143 * (n - 1) / (14042 - 57))) < 1, s
    # within a subject, its first rows; the order is the task's (subject, row)
    ids = [p.id for p in full]
    assert [p.id for p in sub] == sorted((p.id for p in sub), key=ids.index)
    for s, n in got.items():
        assert sorted(int(p.id.split("/")[1]) for p in sub if p.meta["subject"] == s) == list(range(n))
    assert [p.id for p in task.problems(data_dir, 200)] == [p.id for p in sub]  # deterministic (resume)
    assert "stratified by subject" in task.describe()["limit_selection"]


def test_small_limits_and_allocation_edges():
    sizes = {"a": 100, "b": 300, "c": 5, "d": 1}
    assert allocate(sizes, 4) == {"a": 1, "b": 1, "c": 1, "d": 1}
    # fewer than the subjects: Hamilton (quotas a 0.49, b 1.48: b gets 1, the larger remainder of a the other)
    assert allocate(sizes, 2) == {"a": 1, "b": 1, "c": 0, "d": 0}
    take = allocate(sizes, 406)
    assert take == sizes and sum(allocate(sizes, 57).values()) == 57
    assert allocate(sizes, 57)["d"] == 1


@pytest.mark.parametrize("task,key,groups", [("mmlu_pro", "category", 14), ("mmlu_redux", "subject", 57),
                                             ("ceval", "subject", 52)])
def test_grouped_table4_sets_are_stratified_too(task, key, groups, data_dir):
    """Their files are sorted by group, so the first N rows would be the first groups alphabetically."""
    t = get_task(task)
    full = t.problems(data_dir)
    picked = t.problems(data_dir, limit=groups * 2)
    assert len(picked) == groups * 2 and len({p.meta[key] for p in picked}) == groups
    assert [p.id for p in picked] == [p.id for p in full if p.id in {q.id for q in picked}]  # the set's order
    small = t.problems(data_dir, limit=3)
    assert len(small) == 3 and len({p.meta[key] for p in small}) == 3  # the three largest groups, one each
    assert t.describe()["limit_selection"].startswith(f"stratified by {key}")


def test_runs_made_before_stratification_rescore_their_first_rows(tmp_path, data_dir):
    """A manifest without limit_selection (written while --limit meant the first rows) keeps meaning those rows."""
    from harness.runner import planned_problems
    from harness.store import RunStore

    t = get_task("ceval")
    full = t.problems(data_dir)
    store = RunStore(tmp_path / "run")
    old = planned_problems(t, {"limit": 3, "data": {"files": []}}, store, data_dir)
    new = planned_problems(t, {"limit": 3, "data": t.describe()}, store, data_dir)
    assert [p.id for p in old] == [p.id for p in full[:3]]
    assert [p.id for p in new] == [p.id for p in t.problems(data_dir, limit=3)] != [p.id for p in old]
