"""SealedSecret documents: reading, writing, scope annotations, template, merging."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import (
    ANNOTATION_ADDITIONAL,
    ANNOTATION_CLUSTER_WIDE,
    ANNOTATION_KEY_IDS,
    ANNOTATION_NAMESPACE_WIDE,
    ANNOTATION_SCOPE_DIGEST,
    PlainSecret,
    SealedSecretDoc,
    parse_sealed_secret,
    parse_secret,
    scope_digest,
    seal_secret,
    secret_manifest,
)
from sealed_gitops.crypto.sealed_merge import merge_into
from sealed_gitops.crypto.sealing_keys import SealingKey
from sealed_gitops.errors import ConfigError, FormatError
from sealed_gitops.keys.sealing import SealingKeyring

SECRET_MANIFEST = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "db",
        "namespace": "team-a",
        "uid": "1234",
        "resourceVersion": "9",
        "labels": {"app": "db"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"leak"}}',
            "team": "a",
        },
    },
    "type": "kubernetes.io/basic-auth",
    "immutable": True,
    "data": {"username": "YWRtaW4="},
    "stringData": {"password": "p@ss-w0rd!"},
}


def test_parse_secret_merges_data_and_string_data() -> None:
    secret = parse_secret(SECRET_MANIFEST)
    assert secret.data == {"username": b"admin", "password": b"p@ss-w0rd!"}
    assert (secret.name, secret.namespace, secret.type, secret.immutable) == (
        "db", "team-a", "kubernetes.io/basic-auth", True,
    )


@pytest.mark.parametrize(
    ("scope", "annotation"),
    [
        (Scope.STRICT, None),
        (Scope.NAMESPACE_WIDE, ANNOTATION_NAMESPACE_WIDE),
        (Scope.CLUSTER_WIDE, ANNOTATION_CLUSTER_WIDE),
    ],
)
def test_written_document_is_kubeseal_shaped(
    key_a: SealingKey, scope: Scope, annotation: str | None
) -> None:
    manifest = seal_secret(
        parse_secret(SECRET_MANIFEST), recipients=[key_a.public_key], scope=scope
    ).to_manifest()
    assert list(manifest) == ["apiVersion", "kind", "metadata", "spec"]
    assert manifest["apiVersion"] == "bitnami.com/v1alpha1"
    assert manifest["kind"] == "SealedSecret"
    assert list(manifest["spec"]["encryptedData"]) == ["password", "username"]
    template = manifest["spec"]["template"]
    assert template["type"] == "kubernetes.io/basic-auth"
    assert template["immutable"] is True
    tmeta = template["metadata"]
    assert tmeta["name"] == "db" and tmeta["labels"] == {"app": "db"}
    assert "uid" not in tmeta and "resourceVersion" not in tmeta
    # The last-applied annotation carries plaintext; it must never be copied.
    assert "kubectl.kubernetes.io/last-applied-configuration" not in tmeta["annotations"]
    top = manifest["metadata"]["annotations"]
    for where in (top, tmeta["annotations"]):
        scoped = {k for k in (ANNOTATION_NAMESPACE_WIDE, ANNOTATION_CLUSTER_WIDE) if k in where}
        assert scoped == ({annotation} if annotation else set())
        if annotation:
            assert where[annotation] == "true"
    # Our annotations stay on the SealedSecret, never in the template copied to the Secret.
    assert json.loads(top[ANNOTATION_KEY_IDS]) == {
        "password": key_a.fingerprint, "username": key_a.fingerprint,
    }
    assert ANNOTATION_KEY_IDS not in tmeta["annotations"]
    assert "p@ss-w0rd!" not in json.dumps(manifest)


def test_read_write_round_trip_keeps_unknown_fields(key_a: SealingKey, key_b: SealingKey) -> None:
    doc = seal_secret(
        parse_secret(SECRET_MANIFEST), recipients=[key_a.public_key, key_b.public_key],
        scope=Scope.NAMESPACE_WIDE,
    )
    manifest = doc.to_manifest()
    manifest["metadata"]["labels"] = {"kept": "yes"}
    manifest["metadata"]["annotations"]["other.io/x"] = "kept"
    manifest["spec"]["template"]["metadata"]["finalizers"] = ["x"]
    again = parse_sealed_secret(manifest).to_manifest()
    assert again == manifest
    assert json.loads(again["metadata"]["annotations"][ANNOTATION_ADDITIONAL]).keys() == {
        key_b.fingerprint
    }
    assert again["metadata"]["annotations"][ANNOTATION_SCOPE_DIGEST] == scope_digest(b"team-a")


def test_deprecated_spec_data_is_refused() -> None:
    manifest = {
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "old", "namespace": "ns"},
        "spec": {"data": "AgBy3i4OJSWK+PiTySYZZA=="},
    }
    with pytest.raises(FormatError, match=r"deprecated spec\.data"):
        parse_sealed_secret(manifest, file="old.yaml")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"apiVersion": "v1", "kind": "Secret"}, "expected bitnami.com/v1alpha1"),
        ({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {}},
         "metadata.name"),
        ({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
          "metadata": {"name": "x"}, "spec": {"encryptedData": {"a": 1}}}, "strings"),
        ({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
          "metadata": {"name": "x", "annotations": {ANNOTATION_KEY_IDS: "{not json"}}},
         "not valid JSON"),
    ],
)
def test_malformed_documents_are_format_errors(manifest: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_sealed_secret(manifest)


def test_strict_document_without_namespace_cannot_be_opened() -> None:
    doc = parse_sealed_secret({
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "x"}, "spec": {"encryptedData": {}},
    })
    with pytest.raises(FormatError, match=r"needs metadata\.namespace"):
        doc.label()


def test_template_data_is_refused_on_unseal(key_a: SealingKey) -> None:
    doc = seal_secret(
        parse_secret(SECRET_MANIFEST), recipients=[key_a.public_key], scope=Scope.STRICT
    )
    doc.template["data"] = {"dsn": "{{ .password }}"}
    with pytest.raises(FormatError, match=r"template\.data"):
        secret_manifest(doc, {})


def test_our_hints_moved_into_the_template_do_not_reach_the_secret(key_a: SealingKey) -> None:
    """Bitnami's /v1/rotate (kubeseal --re-encrypt) copies the SealedSecret's metadata, our
    key-id and scope hints included, into spec.template; the Secret must not carry them (found
    by tests/peers against the controller v0.40.0)."""
    doc = seal_secret(
        parse_secret(SECRET_MANIFEST), recipients=[key_a.public_key], scope=Scope.STRICT
    )
    manifest = doc.to_manifest()
    ours = manifest["metadata"]["annotations"]
    assert {"sealed-gitops.io/key-ids", "sealed-gitops.io/scope-sha256"} <= set(ours)
    template_meta = manifest["spec"]["template"]["metadata"]
    before = dict(template_meta.get("annotations") or {})
    template_meta["annotations"] = {**before, **ours}
    reread = parse_sealed_secret(manifest)
    secret = secret_manifest(reread, SealingKeyring([key_a.private_key]).unseal(reread).values)
    assert (secret["metadata"].get("annotations") or {}) == before


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True), st.binary(max_size=200), max_size=5
    ),
    scope=st.sampled_from(list(Scope)),
)
def test_seal_then_unseal_round_trip(
    key_a: SealingKey, data: dict[str, bytes], scope: Scope
) -> None:
    doc = seal_secret(
        PlainSecret(name="app", namespace="prod", data=data), recipients=[key_a.public_key],
        scope=scope,
    )
    reread = parse_sealed_secret(doc.to_manifest())
    values = SealingKeyring([key_a.private_key]).unseal(reread).values
    assert values == data
    secret = secret_manifest(reread, values)
    assert parse_secret(secret).data == data


def _old(key: SealingKey, **data: bytes) -> tuple[SealedSecretDoc, SealedSecretDoc]:
    secret = PlainSecret(name="db", namespace="team-a", data=dict(data))
    doc = seal_secret(secret, recipients=[key.public_key], scope=Scope.STRICT)
    return doc, parse_sealed_secret(doc.to_manifest())


def test_merge_with_key_keeps_unchanged_ciphertexts(key_a: SealingKey) -> None:
    doc, old = _old(key_a, user=b"admin", password=b"old-pass")
    values = SealingKeyring([key_a.private_key]).unseal(old).values
    new = PlainSecret(name="ignored", namespace=None,
                      data={"user": b"admin", "password": b"new-pass", "extra": b"x1"})
    merged = merge_into(old, new, recipients=[key_a.public_key], scope=Scope.STRICT,
                        old_values=values)
    assert merged.name == "db"
    assert merged.encrypted_data["user"] == doc.encrypted_data["user"]
    assert merged.encrypted_data["password"] != doc.encrypted_data["password"]
    opened = SealingKeyring([key_a.private_key]).unseal(merged).values
    assert opened == {"user": b"admin", "password": b"new-pass", "extra": b"x1"}


def test_merge_without_key_reseals_only_given_values(key_a: SealingKey) -> None:
    doc, old = _old(key_a, user=b"admin", password=b"old-pass")
    new = PlainSecret(name="db", namespace="team-a", data={"password": b"old-pass"})
    merged = merge_into(old, new, recipients=[key_a.public_key], scope=Scope.STRICT)
    assert merged.encrypted_data["user"] == doc.encrypted_data["user"]
    assert merged.encrypted_data["password"] != doc.encrypted_data["password"]


def test_merge_reseals_unchanged_values_for_new_recipients(
    key_a: SealingKey, key_b: SealingKey
) -> None:
    doc, old = _old(key_a, user=b"admin")
    values = SealingKeyring([key_a.private_key]).unseal(old).values
    merged = merge_into(old, PlainSecret(name="db", namespace="team-a", data={"user": b"admin"}),
                        recipients=[key_a.public_key, key_b.public_key], scope=Scope.STRICT,
                        old_values=values)
    assert merged.encrypted_data["user"] != doc.encrypted_data["user"]
    assert SealingKeyring([key_b.private_key]).unseal(merged).values == {"user": b"admin"}


def test_merge_changing_scope_needs_the_key(key_a: SealingKey) -> None:
    _, old = _old(key_a, user=b"admin", password=b"p")
    new = PlainSecret(name="db", namespace="team-a", data={"password": b"p2"})
    with pytest.raises(ConfigError, match="--key"):
        merge_into(old, new, recipients=[key_a.public_key], scope=Scope.NAMESPACE_WIDE)
    values = SealingKeyring([key_a.private_key]).unseal(old).values
    merged = merge_into(old, new, recipients=[key_a.public_key], scope=Scope.NAMESPACE_WIDE,
                        old_values=values)
    reread = parse_sealed_secret(merged.to_manifest())
    assert reread.scope is Scope.NAMESPACE_WIDE
    assert SealingKeyring([key_a.private_key]).unseal(reread).values == {
        "user": b"admin", "password": b"p2"
    }
