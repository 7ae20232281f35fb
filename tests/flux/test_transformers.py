"""Issue 12, Must 1: kustomize transformers over SOPS documents, with the MAC still verified.

The Flux layout: a Secret encrypted by the real sops with ``encrypted_regex: ^(data|stringData)$``
and a kustomization that sets ``namespace``, labels, a name prefix/suffix, or patches its
metadata. Those change only unencrypted fields, so the build must give the decrypted Secret with
the transformed metadata. What no transformer may do is change an encrypted value, move one to
another key, put plaintext where the file's rules encrypt, or borrow a ciphertext from another
file: each of those fails the object, naming the file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.errors import ScopeMismatch, SealedGitopsError
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render import DocKind
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.decrypt import DecryptionKeys
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import SECRET, cli_build, keys_for, sops_encrypt, write

CANARY = "canary-transformed-7c1e"

TRANSFORMERS = {
    "namespace": "namespace: apps\n",
    "commonLabels": "commonLabels:\n  team: a\n",
    "labels": "labels:\n- pairs:\n    team: a\n  includeSelectors: false\n",
    "prefix-suffix": "namePrefix: p-\nnameSuffix: -s\n",
    "strategic-merge-patch": (
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: Secret\n    metadata:\n"
        '      name: db\n      annotations:\n        reloader/match: "true"\n'
    ),
    "json6902-patch": (
        "patches:\n- target:\n    kind: Secret\n    name: db\n  patch: |\n"
        "    - op: add\n      path: /metadata/labels\n      value: {team: a}\n"
    ),
    "all-together": (
        "namespace: apps\nnamePrefix: p-\nnameSuffix: -s\ncommonLabels:\n  team: a\n"
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: Secret\n    metadata:\n"
        '      name: db\n      annotations:\n        reloader/match: "true"\n'
    ),
}


@pytest.fixture
def age(age_keys: list[AgeKey]) -> AgeKey:
    return age_keys[0]


def _flux_repo(
    root: Path, sops: str, age: AgeKey, kustomization_tail: str, *, mac_only_encrypted: bool = False
) -> Path:
    secret = write(root, "app/secret.yaml", SECRET.format(name="db", value=CANARY))
    sops_encrypt(sops, secret, age=age, mac_only_encrypted=mac_only_encrypted)
    write(
        root,
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n",
    )
    write(
        root,
        "app/kustomization.yaml",
        "resources:\n- secret.yaml\n- cm.yaml\n" + kustomization_tail,
    )
    return secret


@pytest.mark.parametrize("mac_only_encrypted", [False, True], ids=["mac-all", "mac-only-encrypted"])
@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformers_over_unencrypted_fields_of_a_sops_secret_work(
    tmp_path: Path, sops_binary: str, age: AgeKey, name: str, mac_only_encrypted: bool
) -> None:
    _flux_repo(
        tmp_path, sops_binary, age, TRANSFORMERS[name], mac_only_encrypted=mac_only_encrypted
    )

    result = build(root=tmp_path, path="app", keys=keys_for(age))

    assert result.complete, [str(f) for f in result.failures]
    (secret,) = [o for o in result.objects if o.id.kind == "Secret"]
    assert secret.source is DocKind.SOPS
    assert (secret.file, secret.index, secret.via) == ("app/secret.yaml", 0, "app")
    assert secret.data["stringData"] == {"password": CANARY, "username": "admin"}
    assert "sops" not in secret.data
    meta = secret.data["metadata"]
    if "namespace" in TRANSFORMERS[name]:
        assert meta["namespace"] == "apps"
    if "Prefix" in TRANSFORMERS[name]:
        assert meta["name"] == "p-db-s"
    if "team: a" in TRANSFORMERS[name] or "{team: a}" in TRANSFORMERS[name]:
        assert meta["labels"]["team"] == "a"
    if "annotations" in TRANSFORMERS[name]:
        assert meta["annotations"] == {"reloader/match": "true"}


def test_the_cli_builds_the_flux_layout(tmp_path: Path, sops_binary: str, age: AgeKey) -> None:
    _flux_repo(tmp_path, sops_binary, age, TRANSFORMERS["all-together"])
    done = cli_build(tmp_path, "app", age, "--show-secrets")
    assert done.returncode == 0, done.stderr
    assert CANARY in done.stdout and "name: p-db-s" in done.stdout
    assert "ENC[" not in done.stdout and "sops" not in done.stdout


def _other_ciphertext(root: Path, sops: str, age: AgeKey) -> str:
    """A ciphertext for stringData.password from ANOTHER sops file (another data key)."""
    other = write(
        root.parent / "elsewhere", "other.yaml", SECRET.format(name="db", value="attacker-chosen")
    )
    sops_encrypt(sops, other, age=age)
    found = re.search(r"password: (ENC\[[^\]]+\])", other.read_text())
    assert found is not None
    return found.group(1)


def _own_ciphertext(secret: Path, key: str) -> str:
    found = re.search(rf"{key}: (ENC\[[^\]]+\])", secret.read_text())
    assert found is not None
    return found.group(1)


HOSTILE: dict[str, Callable[[Path, str], str]] = {
    # a value of this very file, moved to another key (its AAD is its key path: GCM must fail)
    "moved-to-another-key": lambda secret, other: (
        "patches:\n- target:\n    kind: Secret\n    name: db\n  patch: |\n"
        "    - op: copy\n      from: /stringData/password\n      path: /stringData/username\n"
    ),
    # a ciphertext made with another file's data key, pasted over the real one
    "borrowed-from-another-file": lambda secret, other: (
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: Secret\n    metadata:\n"
        f"      name: db\n    stringData:\n      password: {other}\n"
    ),
    # the file's own ciphertext with one character changed
    "tampered": lambda secret, other: (
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: Secret\n    metadata:\n"
        "      name: db\n    stringData:\n      password: "
        + _own_ciphertext(secret, "password").replace("data:", "data:A", 1)
        + "\n"
    ),
    # plaintext where the file's rules say values are encrypted
    "plaintext-added": lambda secret, other: (
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: Secret\n    metadata:\n"
        "      name: db\n    stringData:\n      extra: not-encrypted\n"
    ),
    # an encrypted value removed (the MAC of the output would not hold either)
    "value-removed": lambda secret, other: (
        "patches:\n- target:\n    kind: Secret\n    name: db\n  patch: |\n"
        "    - op: remove\n      path: /stringData/username\n"
    ),
    # the sops metadata itself changed by a patch
    "metadata-changed": lambda secret, other: (
        "patches:\n- target:\n    kind: Secret\n    name: db\n  patch: |\n"
        "    - op: replace\n      path: /sops/encrypted_regex\n      value: ^nothing$\n"
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_transformer_that_touches_an_encrypted_value_fails_naming_the_file(
    tmp_path: Path, sops_binary: str, age: AgeKey, name: str
) -> None:
    secret = _flux_repo(tmp_path, sops_binary, age, "namespace: apps\n")
    other = _other_ciphertext(tmp_path, sops_binary, age)
    kfile = tmp_path / "app/kustomization.yaml"
    kfile.write_text(kfile.read_text() + HOSTILE[name](secret, other))

    with pytest.raises(SealedGitopsError) as info:
        build(root=tmp_path, path="app", keys=keys_for(age))
    assert str(info.value).startswith("app/secret.yaml"), str(info.value)
    assert CANARY not in str(info.value)

    isolated = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert [f.file for f in isolated.failures] == ["app/secret.yaml"]
    assert [o.id.name for o in isolated.objects] == ["cfg"]  # the rest goes on


def test_a_tampered_source_file_still_fails_its_mac(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """The MAC is verified over the file as committed, before any transformer."""
    secret = _flux_repo(tmp_path, sops_binary, age, "namespace: apps\n")
    username = _own_ciphertext(secret, "username")
    password = _own_ciphertext(secret, "password")
    # swap the two ciphertexts in the committed file: each still has its own AAD... no, each is
    # now under the other key; and a file whose MAC does not hold is refused before that
    text = secret.read_text().replace(password, "@@P@@").replace(username, password)
    secret.write_text(text.replace("@@P@@", username))
    done = cli_build(tmp_path, "app", age)
    assert done.returncode == 1
    assert "app/secret.yaml" in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_a_value_swapped_between_documents_of_one_file_fails(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """The documents of one SOPS file share its data key, and the AAD is only the key path: a
    patch putting document 0's password into document 1 would decrypt. It must not pass."""
    two = SECRET.format(name="a", value=CANARY) + "---\n" + SECRET.format(name="b", value="b-pw")
    secrets = write(tmp_path, "app/secrets.yaml", two)
    sops_encrypt(sops_binary, secrets, age=age)
    write(tmp_path, "app/kustomization.yaml", "resources:\n- secrets.yaml\nnamespace: apps\n")
    fine = build(root=tmp_path, path="app", keys=keys_for(age))
    by_name = {o.id.name: o.data["stringData"]["password"] for o in fine.objects}
    assert by_name == {"a": CANARY, "b": "b-pw"}
    assert {(o.file, o.index) for o in fine.objects} == {
        ("app/secrets.yaml", 0),
        ("app/secrets.yaml", 1),
    }

    first = _own_ciphertext(secrets, "password")
    (tmp_path / "app/kustomization.yaml").write_text(
        "resources:\n- secrets.yaml\nnamespace: apps\npatches:\n- patch: |\n"
        "    apiVersion: v1\n    kind: Secret\n    metadata:\n      name: b\n"
        f"    stringData:\n      password: {first}\n"
    )
    result = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert [o.id.name for o in result.objects] == ["a"]
    # (which of the two documents it is tied to is a tie here: either way it cannot open)
    assert [(f.file, f.object) for f in result.failures] == [("app/secrets.yaml", "Secret apps/b")]
    assert "not this document's value" in result.failures[0].reason


@pytest.mark.parametrize(
    ("tail", "opens"),
    [("namePrefix: p-\ncommonLabels:\n  team: a\n", True), ("namespace: elsewhere\n", False)],
    ids=["prefix-and-labels", "namespace-moved"],
)
def test_strict_namespace_binding_trusts_only_the_committed_namespace(
    tmp_path: Path, sops_binary: str, age: AgeKey, tail: str, opens: bool
) -> None:
    secret = write(
        tmp_path,
        "app/secret.yaml",
        SECRET.format(name="db", value=CANARY).replace(
            "  name: db\n", "  name: db\n  namespace: apps\n"
        ),
    )
    sops_encrypt(sops_binary, secret, age=age)
    write(tmp_path, "app/kustomization.yaml", "resources:\n- secret.yaml\n" + tail)
    keys = DecryptionKeys(sops=keys_for(age).sops, sops_binding=NamespaceBinding.STRICT)
    if opens:
        (obj,) = build(root=tmp_path, path="app", keys=keys).objects
        assert (obj.id.namespace, obj.id.name) == ("apps", "p-db")
        assert obj.data["stringData"]["password"] == CANARY
    else:
        with pytest.raises(ScopeMismatch, match="moved this SOPS-encrypted object"):
            build(root=tmp_path, path="app", keys=keys)
        # without the binding, kustomize's namespace is as good as any unencrypted field
        (obj,) = build(root=tmp_path, path="app", keys=keys_for(age)).objects
        assert obj.id.namespace == "elsewhere"


def test_a_patch_over_the_sops_mac_fails_naming_the_kustomization(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """With its MAC changed the document matches no committed file: it cannot be verified."""
    _flux_repo(tmp_path, sops_binary, age, "namespace: apps\n")
    kfile = tmp_path / "app/kustomization.yaml"
    kfile.write_text(
        kfile.read_text() + "patches:\n- target:\n    kind: Secret\n    name: db\n  patch: |\n"
        "    - op: replace\n      path: /sops/mac\n      value: ENC[AES256_GCM,data:AAAA]\n"
    )
    with pytest.raises(SealedGitopsError, match="matches no file it read") as info:
        build(root=tmp_path, path="app", keys=keys_for(age))
    assert str(info.value).startswith("app (document ")
    isolated = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert [o.id.name for o in isolated.objects] == ["cfg"]
    assert [f.object for f in isolated.failures] == ["Secret apps/db"]


def test_long_and_multiline_values_survive_kustomize_re_emitting_them(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """kustomize prints the YAML again (quoting, line breaks): the comparison is on the parsed
    ENC[...] strings, never on YAML bytes."""
    long_b64 = base64.b64encode(CANARY.encode() * 120).decode()
    secret = write(
        tmp_path,
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: Opaque\n"
        f"data:\n  blob: {long_b64}\n"
        f'stringData:\n  pem: |\n    -----BEGIN-----\n    {CANARY}: "quoted"\n    -----END-----\n'
        "  number: '42'\n",
    )
    sops_encrypt(sops_binary, secret, age=age)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- secret.yaml\nnamespace: apps\nnamePrefix: p-\n",
    )
    (obj,) = build(root=tmp_path, path="app", keys=keys_for(age)).objects
    assert obj.id.describe() == "Secret apps/p-tls"
    assert obj.data["data"]["blob"] == long_b64
    assert obj.data["stringData"]["pem"] == f'-----BEGIN-----\n{CANARY}: "quoted"\n-----END-----\n'
    assert obj.data["stringData"]["number"] == "42"
