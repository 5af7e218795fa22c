"""`--safety-sample N`: a seeded sample stratified by category and expected behaviour."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from .items import SafetyItem


def allocate(sizes: dict[tuple[str, str], int], n: int) -> dict[tuple[str, str], int]:
    """Split n over strata in proportion to their sizes (largest remainder), at least one per
    stratum while n allows, never more than a stratum holds."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    keys = sorted(sizes)
    quota = {k: n * sizes[k] / total for k in keys}
    counts = {k: min(sizes[k], int(quota[k])) for k in keys}
    if n >= len(keys):
        for k in keys:
            counts[k] = max(counts[k], 1)
    # Hand out what is left by largest remainder, then trim any excess from the largest strata.
    by_remainder = sorted(keys, key=lambda k: (-(quota[k] - int(quota[k])), k))
    while sum(counts.values()) < n:
        for k in by_remainder:
            if sum(counts.values()) >= n:
                break
            if counts[k] < sizes[k]:
                counts[k] += 1
    while sum(counts.values()) > n:
        largest = max(keys, key=lambda k: (counts[k], k))
        counts[largest] -= 1
    return counts


def stratified_sample(items: Sequence[SafetyItem], n: int, seed: int) -> list[SafetyItem]:
    """About n items with every (category, expected) stratum represented in proportion, keeping
    the suite's order. Deterministic for a seed: every xdist worker must draw the same sample."""
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        strata[(item.category, item.expected)].append(index)
    counts = allocate({k: len(v) for k, v in strata.items()}, n)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for key in sorted(strata):
        chosen.update(rng.sample(strata[key], counts[key]))
    return [item for index, item in enumerate(items) if index in chosen]
