"""The operator process's garbage-collector thresholds: fewer passes over a large, long-lived heap.

Why: an operator holding 20,000 objects keeps about half a million objects the cyclic collector
tracks (parsed and decrypted files, prepared objects, records: the memory that makes a no-op
reconcile cheap). With CPython's default thresholds (700, 10, 10) the collector runs a young
collection every 700 allocations and a full one, which walks that whole heap, every hundred of
those; a no-op reconcile allocates enough to pay for part of one every time. In
``benchmarks/scale.py`` that made a no-op reconcile of a 400-object Sync cost about 18-25 ms of
CPU instead of 14 ms; a higher first threshold runs the collector 70 times less often.

What it costs: cyclic garbage (rare here: the data are trees) lives until the next collection,
at most :data:`YOUNG_THRESHOLD` new objects later; reference counting still frees everything
else at once. Only the operator command calls this: a library user's process keeps its settings.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

#: Allocations (net of frees) between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 50_000


def tune_collector() -> tuple[int, int, int]:
    """Raise the young-generation threshold (the others unchanged); returns the new thresholds."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_threshold()
