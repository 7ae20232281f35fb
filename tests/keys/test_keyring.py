"""KeyRing: dispatch by stanza kind, the unwrap cache, operation counters, error handling.

The providers here are stand-ins for the project's own seam (the Unwrapper protocol); the real
providers get the same treatment in test_pgp.py and test_vault.py.
"""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import IntegrityError, KeyProviderError
from sealed_gitops.keys.keyring import RESULT_ERROR, RESULT_NO_MATCH, RESULT_OK, KeyRing
from sealed_gitops.keys.pgp import GnuPG, PgpMasterKey, PgpUnwrapper
from tests.conftest_tools import PgpKey

DATA_KEY = bytes(range(32))


class Table:
    """An unwrapper answering from a dict of enc -> data key (None: no match)."""

    def __init__(self, kind: str, answers: dict[str, bytes], *, fail: Exception | None = None):
        self.kinds = frozenset({kind})
        self.answers = answers
        self.fail = fail
        self.calls = 0
        self.closed = False

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return self.answers.get(stanza.enc)

    def close(self) -> None:
        self.closed = True


def stanza(kind: str = "age", enc: str = "wrapped-1", **extra: str) -> KeyStanza:
    return KeyStanza(kind=kind, data={"enc": enc, **extra})


class TestCache:
    def test_second_unwrap_of_the_same_stanza_costs_no_provider_call(self) -> None:
        provider = Table("age", {"wrapped-1": DATA_KEY})
        ring = KeyRing([provider])
        assert ring.unwrap(stanza()) == DATA_KEY
        assert ring.unwrap(stanza()) == DATA_KEY
        assert provider.calls == 1
        assert ring.operations == {("age", RESULT_OK): 1}
        assert ring.cache_hits == 1

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (stanza("age", "a"), stanza("age", "b")),  # another wrapped key
            (stanza("age", "a"), stanza("pgp", "a")),  # same text, another kind
        ],
        ids=["other-enc", "other-kind"],
    )
    def test_cache_is_keyed_by_kind_and_enc(self, first: KeyStanza, second: KeyStanza) -> None:
        a = Table("age", {"a": b"1" * 32, "b": b"2" * 32})
        p = Table("pgp", {"a": b"3" * 32})
        ring = KeyRing([a, p])
        one, two = ring.unwrap(first), ring.unwrap(second)
        assert one != two
        assert a.calls + p.calls == 2

    def test_metadata_other_than_enc_does_not_defeat_the_cache(self) -> None:
        provider = Table("age", {"x": DATA_KEY})
        ring = KeyRing([provider])
        ring.unwrap(stanza("age", "x", recipient="age1aaa"))
        ring.unwrap(stanza("age", "x", recipient="age1aaa", created_at="later"))
        assert provider.calls == 1

    def test_no_match_is_cached_until_a_provider_is_added(self) -> None:
        empty = Table("age", {})
        ring = KeyRing([empty])
        assert ring.unwrap(stanza()) is None
        assert ring.unwrap(stanza()) is None
        assert empty.calls == 1
        ring.add(Table("age", {"wrapped-1": DATA_KEY}))
        assert ring.unwrap(stanza()) == DATA_KEY
        assert ring.operations == {("age", RESULT_NO_MATCH): 2, ("age", RESULT_OK): 1}

    def test_failures_are_not_cached(self) -> None:
        flaky = Table("hc_vault", {}, fail=KeyProviderError("Vault is unreachable at http://x"))
        ring = KeyRing([flaky])
        for _ in range(2):
            with pytest.raises(KeyProviderError, match="unreachable"):
                ring.unwrap(stanza("hc_vault"))
        assert flaky.calls == 2
        assert ring.operation_count("hc_vault", RESULT_ERROR) == 2

    def test_cache_is_bounded(self) -> None:
        provider = Table("age", {f"e{i}": DATA_KEY for i in range(10)})
        ring = KeyRing([provider], cache_size=4)
        for i in range(10):
            ring.unwrap(stanza("age", f"e{i}"))
        ring.unwrap(stanza("age", "e9"))  # recent: cached
        ring.unwrap(stanza("age", "e0"))  # evicted: asked again
        assert provider.calls == 11

    def test_observer_sees_each_real_operation(self) -> None:
        seen: list[tuple[str, str]] = []
        ring = KeyRing(
            [Table("age", {"w": DATA_KEY}), Table("pgp", {})],
            observer=lambda kind, result: seen.append((kind, result)),
        )
        for _ in range(3):
            ring.unwrap(stanza("age", "w"))
            ring.unwrap(stanza("pgp", "x"))
        assert seen == [("age", RESULT_OK), ("pgp", RESULT_NO_MATCH)]

    def test_clear_cache_forgets_data_keys(self) -> None:
        provider = Table("age", {"wrapped-1": DATA_KEY})
        ring = KeyRing([provider])
        ring.unwrap(stanza())
        ring.clear_cache()
        ring.unwrap(stanza())
        assert provider.calls == 2

    @settings(max_examples=50, deadline=None)
    @given(encs=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20))
    def test_each_distinct_stanza_costs_exactly_one_call(self, encs: list[str]) -> None:
        provider = Table("age", {e: os.urandom(32) for e in encs})
        ring = KeyRing([provider])
        for e in encs + encs:
            assert ring.unwrap(stanza("age", e)) == provider.answers[e]
        assert provider.calls == len(set(encs))


class TestDispatch:
    def test_only_providers_for_the_stanza_kind_are_asked(self) -> None:
        age, pgp = Table("age", {}), Table("pgp", {"w": DATA_KEY})
        ring = KeyRing([age, pgp])
        assert ring.unwrap(stanza("pgp", "w")) == DATA_KEY
        assert (age.calls, pgp.calls) == (0, 1)

    def test_kind_without_provider_is_no_match_and_no_operation(self) -> None:
        ring = KeyRing([Table("age", {})])
        assert ring.unwrap(stanza("kms")) is None
        assert ring.operations == {}

    def test_first_success_wins_after_a_failure(self) -> None:
        broken = Table("pgp", {}, fail=KeyProviderError("gpg failed"))
        good = Table("pgp", {"w": DATA_KEY})
        ring = KeyRing([broken, good])
        assert ring.unwrap(stanza("pgp", "w")) == DATA_KEY
        assert ring.operations == {("pgp", RESULT_ERROR): 1, ("pgp", RESULT_OK): 1}

    @pytest.mark.parametrize(
        "error",
        [KeyProviderError("Vault is unreachable at http://vault:8200"), IntegrityError("corrupt")],
        ids=["provider", "crypto"],
    )
    def test_project_errors_pass_through_when_nothing_succeeds(self, error: Exception) -> None:
        ring = KeyRing([Table("hc_vault", {}, fail=error), Table("hc_vault", {})])
        with pytest.raises(type(error)) as caught:
            ring.unwrap(stanza("hc_vault"))
        assert caught.value is error

    def test_foreign_exceptions_are_wrapped_without_their_text(self) -> None:
        secret = "AGE-SECRET-KEY-1LEAKED"
        ring = KeyRing([Table("age", {}, fail=ValueError(f"bad identity {secret}"))])
        with pytest.raises(KeyProviderError) as caught:
            ring.unwrap(stanza("age", recipient="age1abc"))
        assert secret not in str(caught.value)
        assert "age1abc" in str(caught.value)
        assert isinstance(caught.value.__cause__, ValueError)

    def test_unwrapper_without_kinds_needs_them_spelled_out(self) -> None:
        class Bare:
            def unwrap(self, stanza: KeyStanza) -> bytes | None:
                return DATA_KEY

        ring = KeyRing()
        with pytest.raises(TypeError):
            ring.add(Bare())
        ring.add(Bare(), kinds={"age"}, source="test")
        assert ring.unwrap(stanza()) == DATA_KEY
        assert ring.sources() == ["age: test"]


class TestLifetime:
    def test_close_closes_providers_and_forgets_keys(self) -> None:
        provider = Table("age", {"wrapped-1": DATA_KEY})
        with KeyRing([provider]) as ring:
            ring.unwrap(stanza())
        assert provider.closed
        assert len(ring) == 0
        assert ring.unwrap(stanza()) is None

    def test_repr_and_sources_hold_no_key_material(self) -> None:
        provider = Table("age", {"wrapped-1": DATA_KEY})
        ring = KeyRing([provider])
        ring.unwrap(stanza())
        text = repr(ring) + "".join(ring.sources())
        assert DATA_KEY.hex() not in text and "wrapped-1" not in text

    def test_concurrent_unwraps_agree(self) -> None:
        provider = Table("age", {f"e{i}": bytes([i]) * 32 for i in range(50)})
        ring = KeyRing([provider])
        errors: list[str] = []

        def work() -> None:
            for i in range(50):
                if ring.unwrap(stanza("age", f"e{i}")) != bytes([i]) * 32:
                    errors.append(f"e{i}")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert ring.operation_count(result=RESULT_OK) >= 50


def test_real_pgp_provider_is_called_once_per_wrapped_key(pgp_key: PgpKey) -> None:
    home = GnuPG(home=str(pgp_key.home.path))
    wrapped = PgpMasterKey(pgp_key.fingerprint, gnupg_home=home).wrap(DATA_KEY)
    ring = KeyRing([PgpUnwrapper(gnupg_home=home)])
    assert [ring.unwrap(wrapped) for _ in range(3)] == [DATA_KEY] * 3
    assert ring.operations == {("pgp", RESULT_OK): 1}

