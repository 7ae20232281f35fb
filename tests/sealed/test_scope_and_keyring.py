"""Scope enforcement and key selection when opening SealedSecrets.

The matrix: a value sealed for team-a/db under each scope, opened as each (scope, namespace,
name). It must open exactly when the labels agree, and otherwise fail with ScopeMismatch naming
the scope it was tried under, both for our files (which record their scope) and, where the
candidate scopes allow telling, for Bitnami-made files without our annotations.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope, scope_label
from sealed_gitops.crypto.sealed_document import (
    PlainSecret,
    SealedSecretDoc,
    label_scope,
    seal_secret,
)
from sealed_gitops.crypto.sealing_keys import SealingKey
from sealed_gitops.errors import IntegrityError, NoMatchingKey, ScopeMismatch
from sealed_gitops.keys.sealing import SealingKeyring, candidate_labels
from sealed_gitops.redact import redact

SECRET = PlainSecret(name="db", namespace="team-a", data={"password": b"matrix-secret-1"})
TARGETS = [("team-a", "db"), ("team-b", "db"), ("team-a", "other")]


def _sealed(key: SealingKey, scope: Scope) -> SealedSecretDoc:
    return seal_secret(dataclasses.replace(SECRET), recipients=[key.public_key], scope=scope)


def _moved(doc: SealedSecretDoc, *, scope: Scope, namespace: str, name: str) -> SealedSecretDoc:
    return dataclasses.replace(doc, scope=scope, namespace=namespace, name=name)


def _bitnami(doc: SealedSecretDoc) -> SealedSecretDoc:
    """The same document without our annotations, as kubeseal would have written it."""
    return dataclasses.replace(doc, key_ids={}, additional={}, scope_digest=None)


def _kubeseal_moved(
    doc: SealedSecretDoc, *, scope: Scope, namespace: str, name: str, template_follows: bool
) -> SealedSecretDoc:
    """A kubeseal-made file moved to another scope.

    ``template_follows=False`` is a move that edits only the SealedSecret's own metadata (kustomize
    ``namespace:``/``namePrefix:``, a hand edit): the template still names where it was sealed.
    ``True`` is a move that rewrites the template too (``sed`` over the file).
    """
    moved = _bitnami(_moved(doc, scope=scope, namespace=namespace, name=name))
    if template_follows:
        template = copy.deepcopy(moved.template)
        template["metadata"].update(name=name, namespace=namespace)
        moved = dataclasses.replace(moved, template=template)
    return moved


MATRIX = [
    (origin, sealed_scope, open_scope, ns, name)
    for origin in ("ours", "kubeseal")
    for sealed_scope in Scope
    for open_scope in Scope
    for ns, name in TARGETS
]


@pytest.mark.parametrize(("origin", "sealed_scope", "open_scope", "ns", "name"), MATRIX)
def test_scope_matrix(
    key_a: SealingKey, origin: str, sealed_scope: Scope, open_scope: Scope, ns: str, name: str
) -> None:
    doc = _sealed(key_a, sealed_scope)
    if origin == "ours":
        doc = _moved(doc, scope=open_scope, namespace=ns, name=name)
    else:
        doc = _kubeseal_moved(doc, scope=open_scope, namespace=ns, name=name,
                              template_follows=False)
    keyring = SealingKeyring([key_a.private_key])
    sealed_label = scope_label(sealed_scope, namespace="team-a", name="db")
    tried_label = scope_label(open_scope, namespace=ns, name=name)
    if sealed_label == tried_label:
        assert keyring.unseal(doc).values == {"password": b"matrix-secret-1"}
        return
    with pytest.raises(ScopeMismatch) as info:
        keyring.unseal(doc, file="moved.yaml")
    message = str(info.value)
    assert "scope mismatch" in message
    # Names both the scope it was tried under and the one it was sealed for.
    assert f"not for {label_scope(tried_label)} it was opened as" in message
    assert f"was sealed for {label_scope(sealed_label)}," in message
    assert "moved.yaml" in message
    assert "matrix-secret-1" not in message


@pytest.mark.parametrize(
    ("sealed_scope", "open_as", "expected"),
    [
        # Another scope of the new name and namespace opens it: provably a scope mismatch.
        (Scope.NAMESPACE_WIDE, (Scope.STRICT, "team-a", "db"), ScopeMismatch),
        (Scope.NAMESPACE_WIDE, (Scope.STRICT, "team-a", "other"), ScopeMismatch),
        (Scope.CLUSTER_WIDE, (Scope.STRICT, "team-b", "other"), ScopeMismatch),
        (Scope.STRICT, (Scope.NAMESPACE_WIDE, "team-a", "db"), ScopeMismatch),
        (Scope.STRICT, (Scope.CLUSTER_WIDE, "team-a", "db"), ScopeMismatch),
        # The file no longer records where it was sealed, and no hint or digest of ours says
        # so: to OAEP this is indistinguishable from a wrong key, and the error says that.
        (Scope.STRICT, (Scope.STRICT, "team-b", "db"), NoMatchingKey),
        (Scope.STRICT, (Scope.STRICT, "team-a", "other"), NoMatchingKey),
        (Scope.NAMESPACE_WIDE, (Scope.STRICT, "team-b", "db"), NoMatchingKey),
        (Scope.NAMESPACE_WIDE, (Scope.NAMESPACE_WIDE, "team-b", "db"), NoMatchingKey),
    ],
)
def test_kubeseal_files_moved_with_their_template(
    key_a: SealingKey, sealed_scope: Scope, open_as: tuple[Scope, str, str], expected: type
) -> None:
    scope, ns, name = open_as
    doc = _kubeseal_moved(_sealed(key_a, sealed_scope), scope=scope, namespace=ns, name=name,
                          template_follows=True)
    with pytest.raises(expected) as info:
        SealingKeyring([key_a.private_key]).unseal(doc)
    assert label_scope(scope_label(scope, namespace=ns, name=name)) in str(info.value)
    if expected is ScopeMismatch:
        sealed_label = scope_label(sealed_scope, namespace="team-a", name="db")
        assert f"was sealed for {label_scope(sealed_label)}," in str(info.value)


def test_candidate_labels_come_only_from_the_file(key_a: SealingKey) -> None:
    doc = _kubeseal_moved(_sealed(key_a, Scope.STRICT), scope=Scope.STRICT, namespace="team-b",
                          name="prod-db", template_follows=False)
    own = doc.label()
    assert own == b"team-b/prod-db"
    assert candidate_labels(doc, own=own) == [
        b"team-b/db", b"team-a/prod-db", b"team-a/db", b"team-b", b"team-a", b"",
    ]
    doc.template = {}
    assert candidate_labels(doc, own=own) == [b"team-b", b""]


def _renamed_throughout(doc: SealedSecretDoc, *, namespace: str) -> SealedSecretDoc:
    """Our file after ``sed s/team-a/<namespace>/``: own metadata and template both renamed."""
    template = copy.deepcopy(doc.template)
    template["metadata"]["namespace"] = namespace
    return dataclasses.replace(doc, namespace=namespace, template=template)


@pytest.mark.parametrize(
    ("case", "keys", "fragment"),
    [
        # Renamed throughout: no name in the file opens it, but the recorded digest says where.
        ("renamed", ["key_a"], "was sealed for another scope, not for strict team-b/db"),
        # Only the own namespace moved and the sealing key is not held: the digest matches a
        # label the template records, so the error can name it without any RSA success.
        ("moved", ["key_b"], "was sealed for strict team-a/db, and by a key not given here"),
        # Hint but no digest (an older file of ours): the hinted key does not open it here.
        ("renamed, no digest", ["key_a"], "scope mismatch or tampering"),
    ],
)
def test_our_recorded_scope_and_hint_name_the_mismatch(
    request: pytest.FixtureRequest, key_a: SealingKey, case: str, keys: list[str], fragment: str
) -> None:
    doc = _sealed(key_a, Scope.STRICT)
    if case == "moved":
        doc = _moved(doc, scope=Scope.STRICT, namespace="team-b", name="db")
    else:
        doc = _renamed_throughout(doc, namespace="team-b")
    if case.endswith("no digest"):
        doc = dataclasses.replace(doc, scope_digest=None)
    keyring = SealingKeyring([request.getfixturevalue(k).private_key for k in keys])
    with pytest.raises(ScopeMismatch) as info:
        keyring.unseal(doc)
    assert fragment in str(info.value)
    assert "team-b/db" in str(info.value)
    assert info.value.key_id == key_a.fingerprint


def test_tampered_rsa_part_with_hints_is_an_integrity_error(key_a: SealingKey) -> None:
    doc = _sealed(key_a, Scope.STRICT)
    raw = bytearray(sealed.decode_value(doc.encrypted_data["password"]))
    raw[10] ^= 0x40
    doc.encrypted_data["password"] = sealed.encode_value(bytes(raw))
    with pytest.raises(IntegrityError) as info:
        SealingKeyring([key_a.private_key]).unseal(doc)
    assert info.value.key_id == key_a.fingerprint


def test_wrong_key_is_no_matching_key(key_a: SealingKey, key_b: SealingKey) -> None:
    doc = _sealed(key_a, Scope.STRICT)
    with pytest.raises(NoMatchingKey) as info:
        SealingKeyring([key_b.private_key]).unseal(doc, file="f.yaml")
    # The error names the key the value was sealed for (from the hint) and the file.
    assert info.value.key_id == key_a.fingerprint
    assert str(info.value).startswith("f.yaml")


def test_hinted_key_is_tried_first(
    key_a: SealingKey, key_b: SealingKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _sealed(key_a, Scope.STRICT)
    calls: list[int] = []
    real = sealed.unwrap_session_key

    def counting(value, *, private_key, label):  # type: ignore[no-untyped-def]
        calls.append(private_key.key_size)
        return real(value, private_key=private_key, label=label)

    monkeypatch.setattr(sealed, "unwrap_session_key", counting)
    SealingKeyring([key_b.private_key, key_a.private_key]).unseal(doc)
    assert len(calls) == 1


def test_values_without_hints_open_by_trying_each_key(key_a: SealingKey, key_b: SealingKey) -> None:
    doc = _bitnami(_sealed(key_a, Scope.STRICT))
    result = SealingKeyring([key_b.private_key, key_a.private_key]).unseal(doc)
    assert result.values == {"password": b"matrix-secret-1"}
    assert result.opened_by == {"password": key_a.fingerprint}


def test_several_recipients_each_key_opens_alone(key_a: SealingKey, key_b: SealingKey) -> None:
    doc = seal_secret(
        dataclasses.replace(SECRET), recipients=[key_a.public_key, key_b.public_key],
        scope=Scope.STRICT,
    )
    assert set(doc.additional) == {key_b.fingerprint}
    for key in (key_a, key_b):
        result = SealingKeyring([key.private_key]).unseal(doc)
        assert result.values == {"password": b"matrix-secret-1"}
        assert result.opened_by == {"password": key.fingerprint}


def test_opened_values_are_registered_for_redaction(key_a: SealingKey) -> None:
    secret = PlainSecret(name="db", namespace="team-a", data={"token": b"registered-value-42"})
    doc = seal_secret(secret, recipients=[key_a.public_key], scope=Scope.STRICT)
    SealingKeyring([key_a.private_key]).unseal(doc)
    assert "registered-value-42" not in redact("log line with registered-value-42")
