"""Give the C allocator's free memory back to the system after a reconcile that wrote objects.

Why: a Sync's first reconcile (and one after a new commit) allocates far more than it keeps: the
files read and parsed, the API's answers, the request bodies. Objects larger than CPython's small
object limit (512 bytes: long strings, the tables of larger dicts and lists, bodies of bytes)
come from glibc's ``malloc``, each worker thread from an arena of its own. What such a reconcile
frees between the objects the Sync keeps stays in those arenas, resident, and the next reconcile
on another thread does not reuse it. ``malloc_trim(0)`` returns the whole free pages of every
arena (``madvise``), not only the top of the main heap. In ``benchmarks/scale.py`` at 20,000
objects (100 Syncs) calling it after each such reconcile lowered the operator's peak RSS by about
20 MB of about 290 MB. ``MALLOC_ARENA_MAX=2`` did not: the free memory is inside the arenas, not
in their number.

What it costs: well under a millisecond a call on that heap; a reconcile that wrote no object
(a quiet apply: a no-op, which frees little) skips it, so an idle interval pays nothing. Where
the C library has no ``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_heap"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Return the C allocator's free pages to the system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
