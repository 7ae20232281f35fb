"""Parsed and decrypted files by content, kept between builds of one Sync.

Why: a reconcile after a one-file commit would otherwise parse and decrypt every file again
(about 0.4 ms per SOPS file even with cached data keys, so most of a second for a thousand). Keyed
by the file's path and the SHA-256 of its bytes, an unchanged file costs one read and one hash.
A hit returns exactly what the same bytes gave before, MAC checked then, so it is as safe as
decrypting again, as long as the keys did not change: whoever owns a cache drops it when its
keyring changes. Entries not used by the last build are swept, so the cache holds at most one
repository's worth of files. Cached values are shared: callers copy before they change anything.
Plaintext in it lives in process memory only, like every decrypted object.

A long-lived owner may also say which results are *superseded* by another of the same file and
bytes (the operator: a SOPS file's parsed ciphertext by its decrypted result). A superseded entry
is dropped at the sweep: the decrypted result is what spares the next build a decryption, while
the parsed ciphertext (its ``sops`` block, the ``ENC[...]`` values: about 3 KB of objects for a
small Secret, held by every Sync for every file) costs a re-parse of about 0.1 ms when the file is
read again, which happens only in a build after a new commit.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["DECRYPTED_SUPERSEDES_PARSED", "ContentCache"]

T = TypeVar("T")
Key = tuple[str, str, bytes]  # (what, relative path, digest of the bytes)

#: ``superseded`` for a long-lived cache (the operator's): a SOPS file's parsed documents (the
#: render stage's ``"parsed"``) give way to its decrypted result (the decryption stage's)
DECRYPTED_SUPERSEDES_PARSED: Mapping[str, str] = {"parsed": "decrypted"}


class ContentCache:
    """A content-addressed memo of per-file results, swept after each build."""

    def __init__(self, *, superseded: Mapping[str, str] | None = None) -> None:
        """``superseded``: ``{what: by}``, an entry of ``what`` is swept once an entry of ``by``
        for the same file and bytes exists (see the module docstring); none by default."""
        self._superseded = dict(superseded or {})
        self._entries: dict[Key, Any] = {}
        self._used: set[Key] = set()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        #: results computed (not served from the cache), by ``what``: the operator's count of
        #: files really decrypted (a no-op reconcile must add none) reads ``computed["decrypted"]``
        self.computed: dict[str, int] = {}

    def get_or_compute(self, what: str, rel: str, data: bytes, compute: Callable[[], T]) -> T:
        """The cached result for these bytes of ``rel``, or ``compute()`` (errors not cached)."""
        key = (what, rel, hashlib.sha256(data).digest())
        with self._lock:
            self._used.add(key)
            if key in self._entries:
                self.hits += 1
                return self._entries[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self.misses += 1
            self.computed[what] = self.computed.get(what, 0) + 1
            self._entries[key] = value
        return value

    def sweep(self) -> int:
        """Drop entries the builds since the last sweep did not use; returns how many."""
        with self._lock:
            stale = [key for key in self._entries if key not in self._used]
            if self._superseded:
                kept = self._used & self._entries.keys()
                stale += [
                    key
                    for key in kept
                    if key[0] in self._superseded
                    and (self._superseded[key[0]], key[1], key[2]) in kept
                ]
            for key in stale:
                del self._entries[key]
            self._used.clear()
            return len(stale)

    def held(self, what: str) -> int:
        """How many results of ``what`` the cache holds now (what a sweep kept)."""
        with self._lock:
            return sum(1 for key in self._entries if key[0] == what)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
