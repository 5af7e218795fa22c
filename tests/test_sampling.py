from __future__ import annotations

from collections import Counter

from pytest_vlmsafety.items import SafetyItem
from pytest_vlmsafety.sampling import allocate, stratified_sample


def make_items() -> list[SafetyItem]:
    items = []
    for category, n in (("a", 60), ("b", 30), ("c", 10)):
        for i in range(n):
            items.append(SafetyItem(f"{category}{i}", "s", category, "p", "refuse" if i % 2 else "comply"))
    return items


def test_sample_is_stratified_seeded_and_ordered() -> None:
    items = make_items()
    sample = stratified_sample(items, 20, seed=1)
    assert len(sample) == 20
    counts = Counter((i.category, i.expected) for i in sample)
    assert counts[("a", "refuse")] == 6 and counts[("b", "comply")] == 3 and counts[("c", "refuse")] == 1
    assert sample == stratified_sample(items, 20, seed=1)
    assert sample != stratified_sample(items, 20, seed=2)
    positions = [items.index(i) for i in sample]
    assert positions == sorted(positions)


def test_small_samples_keep_every_stratum_and_exact_size() -> None:
    sizes = {("a", "x"): 100, ("b", "x"): 1, ("c", "x"): 1}
    counts = allocate(sizes, 5)
    assert sum(counts.values()) == 5 and counts[("b", "x")] == 1 and counts[("c", "x")] == 1
    assert allocate(sizes, 500) == sizes
