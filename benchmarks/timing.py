"""Side-by-side timing: a baseline and a candidate measured alternately in one process.

Alternating rounds spread any drift of the machine (frequency, other load) over both sides, and
each round swaps which side goes first (baseline, candidate, candidate, baseline, ...), so neither
always runs on a cache the other warmed. Each side's time is the median of its rounds, each round
itself a median of many calls (``torch.utils.benchmark``'s ``blocked_autorange``), or for calls
that repeat the same work its fastest block (``compare``'s ``fastest``). Many short
rounds resist this shared 2-core machine's bursts of slowness better than a few long ones.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.benchmark import Timer


@dataclass(frozen=True)
class Comparison:
    benchmark: str
    case: str
    baseline_s: float
    candidate_s: float

    @property
    def ratio(self) -> float:
        """candidate / baseline: below 1, the candidate is faster."""
        return self.candidate_s / self.baseline_s

    def row(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "case": self.case,
            "baseline_s": self.baseline_s,
            "candidate_s": self.candidate_s,
            "ratio": self.ratio,
        }


def seconds_per_call(fn: Callable[[], object], min_run_time: float, fastest: bool = False) -> float:
    """Seconds of one ``fn()`` call over blocks lasting ``min_run_time`` in all: the median
    block's, or with ``fastest`` the fastest block's."""
    measurement = Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time)
    return min(measurement.times) if fastest else measurement.median


def compare(
    benchmark: str,
    case: str,
    baseline: Callable[[], object],
    candidate: Callable[[], object],
    rounds: int = 15,
    min_run_time: float = 0.1,
    fastest: bool = False,
) -> Comparison:
    """Time ``baseline`` and ``candidate`` in ``rounds`` alternating rounds (after one warm-up
    call each). ``fastest``: each side's fastest block over all rounds instead of the median
    round, for calls that do the same work every time (as ``timeit`` advises: slower blocks are
    other processes' interference, which on this shared machine moves medians by up to ±20%).
    Not for calls whose work varies (a random cut per step): the fastest block would be the
    luckiest."""
    baseline(), candidate()
    sides = {"baseline": baseline, "candidate": candidate}
    times: dict[str, list[float]] = {"baseline": [], "candidate": []}
    for round_ in range(rounds):
        order = ("baseline", "candidate") if round_ % 2 == 0 else ("candidate", "baseline")
        for side in order:
            times[side].append(seconds_per_call(sides[side], min_run_time, fastest))
    overall = min if fastest else statistics.median
    return Comparison(benchmark, case, overall(times["baseline"]), overall(times["candidate"]))
