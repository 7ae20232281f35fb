"""The ciphertext comparison rules of plan/cipher_diff.py, one row per case (issue 15, Must 6).

Documents here are shaped like the rendered ones (a ``sops`` mapping with wrapped data key
copies, ``ENC[...]`` leaves; a SealedSecret's ``spec.encryptedData``). The ciphertext strings
are stand-ins: only their equality matters to the rules, as it does for real ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from sealed_gitops.plan.cipher_diff import (
    PLACEHOLDER,
    Ciphertexts,
    KeyDiff,
    ciphertexts,
    compare,
    placeholders,
)


def _sops(values: dict[str, str], *, wrapped: tuple[str, ...] = ("wrap-1",)) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "team-a"},
        "stringData": {
            k: f"ENC[AES256_GCM,data:{v},iv:x,tag:y,type:str]" for k, v in values.items()
        },
        "sops": {
            "age": [{"recipient": "age1x", "enc": w} for w in wrapped],
            "mac": "ENC[AES256_GCM,data:mac,iv:x,tag:y,type:str]",
            "lastmodified": "2026-12-05T00:00:00Z",
        },
    }


def _sealed(values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "api", "namespace": "team-a"},
        "spec": {"encryptedData": dict(values), "template": {"metadata": {"name": "api"}}},
    }


CASES = [
    pytest.param(
        _sops({"a": "1", "b": "2", "c": "3"}),
        _sops({"a": "1", "b": "2new", "d": "4"}),
        KeyDiff(added=("d",), changed=("b",), removed=("c",)),
        id="sops-same-data-key",
    ),
    pytest.param(
        _sops({"a": "1", "b": "2"}),
        _sops({"a": "1n", "b": "2n", "c": "3"}, wrapped=("wrap-2",)),
        KeyDiff(added=("c",), unknown=("a", "b"), reencrypted=True),
        id="sops-new-data-key-every-ciphertext-differs",
    ),
    pytest.param(
        _sops({"a": "1", "b": "2"}),
        _sops({"a": "1", "b": "2"}, wrapped=("wrap-1", "wrap-for-bob")),
        KeyDiff(rewrapped=True),
        id="sops-recipient-added-values-kept",
    ),
    pytest.param(
        _sops({"a": "1", "b": "2"}),
        _sops({"a": "1", "b": "2n"}, wrapped=("wrap-2",)),
        KeyDiff(changed=("b",)),
        id="sops-rewrapped-but-a-ciphertext-kept-shows-the-same-data-key",
    ),
    pytest.param(
        _sealed({"a": "s1", "b": "s2", "c": "s3"}),
        _sealed({"a": "s1", "b": "s2n", "d": "s4"}),
        KeyDiff(added=("d",), changed=("b",), removed=("c",)),
        id="sealed-one-value-resealed",
    ),
    pytest.param(
        _sealed({"a": "s1", "b": "s2"}),
        _sealed({"a": "s1n", "b": "s2n"}),
        KeyDiff(unknown=("a", "b"), reencrypted=True),
        id="sealed-full-reseal",
    ),
    pytest.param(
        None,
        _sealed({"a": "s1"}),
        KeyDiff(added=("a",)),
        id="created",
    ),
    pytest.param(
        _sops({"a": "1"}),
        None,
        KeyDiff(removed=("a",)),
        id="pruned",
    ),
    pytest.param(
        _sops({"a": "1"}),
        _sealed({"a": "s1"}),
        KeyDiff(unknown=("a",), reencrypted=True),
        id="format-changed",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_compare(old: dict[str, Any] | None, new: dict[str, Any] | None, expected: KeyDiff) -> None:
    before = ciphertexts(old) if old else None
    after = ciphertexts(new) if new else None
    assert compare(before, after) == expected


def test_unchanged_is_empty_and_notes_say_what_is_known() -> None:
    same = ciphertexts(_sops({"a": "1"}))
    assert compare(same, same).empty
    assert KeyDiff(reencrypted=True).note() == "re-encrypted, values unknown"
    assert KeyDiff(changed=("a",)).note() is None


def test_ciphertexts_name_secret_keys_and_read_wrapped_copies_from_key_groups() -> None:
    doc = _sops({"password": "p"})
    doc["sops"] = {"key_groups": [{"age": [{"recipient": "age1x", "enc": "grouped"}]}]}
    found = ciphertexts(doc)
    assert found is not None
    assert set(found.values) == {"password"} and found.wrapped == frozenset({"grouped"})
    assert ciphertexts({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}) is None
    assert Ciphertexts("sealed", {}) == ciphertexts(_sealed({}))


def test_placeholders_drop_metadata_and_every_ciphertext() -> None:
    shown = placeholders(_sops({"password": "p", "user": "u"}))
    assert "sops" not in shown
    assert shown["stringData"] == {"password": PLACEHOLDER, "user": PLACEHOLDER}
    assert "ENC[" not in repr(shown)
