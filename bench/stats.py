"""Small statistics helpers: interleaved repeats reduced to min and median."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "n": len(values)}


def ratio(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """a / b by minimum and by median (each side reduced on its own)."""
    return {
        "min": min(a) / min(b),
        "median": statistics.median(a) / statistics.median(b),
    }


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def interleave(
    variants: dict[str, Callable[[int], Any]], repeats: int
) -> dict[str, list[Any]]:
    """Run each variant once per repeat, A B then B A alternately (so neither side is
    always first), passing the repeat index; returns every result by variant."""
    names = list(variants)
    results: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(variants[name](r))
    return results


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """a / b per round (each round measured both sides back to back), reduced to the
    median, min and max of those ratios: the neighbours' load moves both sides of a
    round together, so it cancels in each ratio."""
    per_round = [x / y for x, y in zip(a, b, strict=True)]
    return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
            "rounds": per_round}
