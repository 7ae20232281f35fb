"""The keyring: one :class:`~sealed_gitops.crypto.sops.masterkey.Unwrapper` over many providers.

Why it exists: the SOPS engine asks a single unwrapper for every stanza of every file, but the keys
live in different places (age identity files, a GnuPG home, Vault transit). The keyring dispatches
each stanza to the providers that handle its kind and remembers the answer.

Why the cache: the operator decrypts the same files on every reconcile. Unwrapping a data key costs
a gpg process or a Vault round trip, while the wrapped key in an unchanged file is byte-for-byte the
same, so the result is cached under a digest of ``(kind, enc)``. The digest, never the wrapped key
itself, is the cache key, and nothing here logs or raises with key material. "No key here matches"
is cached too (until a provider is added), so a file whose first stanza is for someone else's key
does not start gpg on every pass either. Provider *failures* are never cached: Vault may be back on
the next reconcile.

:attr:`KeyRing.operations` counts the real provider calls by ``(kind, result)`` so metrics and tests
can prove that a second decrypt of an unchanged file costs nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sealed_gitops.crypto.sops.masterkey import KeyStanza, Unwrapper
from sealed_gitops.errors import CryptoError, KeyProviderError

__all__ = [
    "RESULT_ERROR",
    "RESULT_NO_MATCH",
    "RESULT_OK",
    "KeyRing",
    "Provider",
    "ProviderEntry",
]

#: ``result`` label of :attr:`KeyRing.operations` when the provider returned the data key.
RESULT_OK = "ok"
#: ``result`` label when the provider holds no key for the stanza.
RESULT_NO_MATCH = "no_match"
#: ``result`` label when the provider raised (unreachable, refused, corrupt stanza).
RESULT_ERROR = "error"

#: Default upper bound of cached entries; each is ~100 bytes, far below any memory concern, but an
#: operator that runs for months on a busy repository must not grow without limit.
DEFAULT_CACHE_SIZE = 65_536


@runtime_checkable
class Provider(Unwrapper, Protocol):
    """An :class:`Unwrapper` that says which stanza kinds it can handle."""

    @property
    def kinds(self) -> frozenset[str]:
        """Stanza kinds (``age``, ``pgp``, ``hc_vault``, ...) this provider is asked about."""


@dataclass(frozen=True)
class ProviderEntry:
    """An unwrapper registered in a keyring, with the stanza kinds it is asked about."""

    kinds: frozenset[str]
    unwrapper: Unwrapper
    #: called by :meth:`KeyRing.close` (a temporary GnuPG home is removed here)
    close: Callable[[], None] | None = None
    #: where the keys came from, for diagnostics ("SOPS_AGE_KEY_FILE=/path"); never key material
    source: str = ""


def _digest(stanza: KeyStanza) -> bytes:
    h = hashlib.sha256()
    h.update(stanza.kind.encode("utf-8"))
    h.update(b"\0")
    h.update(stanza.enc.encode("utf-8", "surrogatepass"))
    return h.digest()


class KeyRing:
    """Holds several unwrappers, tries those matching a stanza's kind, caches the answers.

    Thread-safe: the operator may decrypt several Syncs at once. Two threads asking for the same
    uncached stanza at the same moment may both call the provider; that costs one extra operation
    and keeps a slow Vault call from blocking every other decrypt behind a lock.
    """

    def __init__(
        self,
        providers: Iterable[ProviderEntry | Provider] = (),
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        observer: Callable[[str, str], None] | None = None,
    ) -> None:
        """``observer(kind, result)`` is called after each real provider operation (the
        operator increments a Prometheus counter there); it must not raise."""
        self._entries: list[ProviderEntry] = []
        self._observer = observer
        self._cache: dict[bytes, bytes | None] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._operations: Counter[tuple[str, str]] = Counter()
        self._hits = 0
        for provider in providers:
            self.add(provider)

    # -- building -----------------------------------------------------------------------------

    def add(
        self,
        provider: ProviderEntry | Provider | Unwrapper,
        *,
        kinds: Iterable[str] | None = None,
        close: Callable[[], None] | None = None,
        source: str = "",
    ) -> None:
        """Register an unwrapper; ``kinds`` is required unless it is a :class:`Provider`.

        ``close`` defaults to the provider's own ``close()`` method, if it has one.
        """
        if isinstance(provider, ProviderEntry):
            entry = provider
        else:
            if kinds is None:
                if not isinstance(provider, Provider):
                    raise TypeError("kinds= is required for an unwrapper without a kinds property")
                kinds = provider.kinds
            if close is None:
                maybe_close = getattr(provider, "close", None)
                close = maybe_close if callable(maybe_close) else None
            entry = ProviderEntry(
                kinds=frozenset(kinds), unwrapper=provider, close=close, source=source
            )
        with self._lock:
            self._entries.append(entry)
            # A new key may open stanzas that were "no match" so far.
            self._cache = {k: v for k, v in self._cache.items() if v is not None}

    @property
    def kinds(self) -> frozenset[str]:
        """Every stanza kind some provider here handles."""
        with self._lock:
            return frozenset().union(*(e.kinds for e in self._entries))

    def sources(self) -> list[str]:
        """One line per provider: its kinds and where its keys came from (for ``--verbose``)."""
        with self._lock:
            entries = list(self._entries)
        return [
            f"{','.join(sorted(e.kinds))}: {e.source or type(e.unwrapper).__name__}"
            for e in entries
        ]

    def __len__(self) -> int:
        return len(self._entries)

    # -- the Unwrapper protocol -----------------------------------------------------------------

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        """Return the data key (or share) wrapped in ``stanza``, or ``None`` if no key matches.

        Providers for the stanza's kind are tried in the order they were added. When one returns
        bytes, that is the answer. When every one returns ``None`` the answer is ``None``. When
        none succeeds and at least one raised, the first error is re-raised: a matching key may
        exist, and "Vault is unreachable" is more useful to the user than "no key".
        """
        digest = _digest(stanza)
        with self._lock:
            if digest in self._cache:
                self._hits += 1
                return self._cache[digest]
            entries = [e for e in self._entries if stanza.kind in e.kinds]
        if not entries:
            return None
        first_error: Exception | None = None
        for entry in entries:
            try:
                result = entry.unwrapper.unwrap(stanza)
            except Exception as exc:
                self._count(stanza.kind, RESULT_ERROR)
                if first_error is None:
                    first_error = exc
                continue
            if result is not None:
                self._count(stanza.kind, RESULT_OK)
                self._store(digest, result)
                return result
            self._count(stanza.kind, RESULT_NO_MATCH)
        if first_error is not None:
            if isinstance(first_error, KeyProviderError | CryptoError):
                raise first_error
            # A provider leaked a third-party exception; wrap it without its text, which may
            # quote its input.
            raise KeyProviderError(
                f"{stanza.kind} key provider failed ({type(first_error).__name__})",
                key_id=stanza.key_id,
            ) from first_error
        self._store(digest, None)
        return None

    # -- observability --------------------------------------------------------------------------

    @property
    def operations(self) -> Mapping[tuple[str, str], int]:
        """Real provider calls so far, by ``(stanza kind, result)``; cache hits not included."""
        with self._lock:
            return dict(self._operations)

    def operation_count(self, kind: str | None = None, result: str | None = None) -> int:
        """Sum of :attr:`operations`, optionally for one kind and/or one result."""
        with self._lock:
            return sum(
                n
                for (k, r), n in self._operations.items()
                if (kind is None or k == kind) and (result is None or r == result)
            )

    @property
    def cache_hits(self) -> int:
        with self._lock:
            return self._hits

    def clear_cache(self) -> None:
        """Forget every cached data key (after a key rotation, or on shutdown)."""
        with self._lock:
            self._cache.clear()

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Forget cached keys and release provider resources (temporary GnuPG homes)."""
        with self._lock:
            entries, self._entries = self._entries, []
            self._cache.clear()
        for entry in entries:
            if entry.close is not None:
                entry.close()

    def __enter__(self) -> KeyRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kinds = ",".join(sorted(self.kinds)) or "-"
        return f"KeyRing(providers={len(self._entries)}, kinds={kinds})"

    # -- internals ------------------------------------------------------------------------------

    def _count(self, kind: str, result: str) -> None:
        with self._lock:
            self._operations[(kind, result)] += 1
        if self._observer is not None:
            self._observer(kind, result)

    def _store(self, digest: bytes, value: bytes | None) -> None:
        with self._lock:
            if len(self._cache) >= self._cache_size:
                # Drop the oldest entry (dicts keep insertion order): cheap and good enough for a
                # working set that is the files of the repositories being reconciled.
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = value
