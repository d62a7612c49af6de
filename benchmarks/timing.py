"""Timing shared by the benchmarks that compare two ways of doing one step."""

from __future__ import annotations

import statistics
import time


def median_times(fns, steps):
    """Median time of each function, timed in alternation (a, b, a, b, ...) so that all see the
    same background load. Two untimed calls each first: a jitted step compiles on its first call
    and again on its second when its outputs come back with other shardings than its inputs."""
    for fn in fns:
        fn()
        fn()
    times = [[] for _ in fns]
    for _ in range(steps):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]
