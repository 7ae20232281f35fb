"""A build reads and parses each file once (render/committed.py), and loses no check doing so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.crypto.sops import yaml_load as sops_yaml
from sealed_gitops.errors import MacMismatch
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import build
from sealed_gitops.render import loader
from sealed_gitops.render.build import render
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.decrypt import DecryptionKeys, decrypt_documents
from sealed_gitops.render.loader import load_bytes, load_with_sops

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: apps
  labels:
    tier: backend
type: Opaque
stringData:
  password: {password}
"""

TEXTS = [
    # go-yaml and the core schema read these plain scalars differently: each view keeps its own
    "a: yes\nb: 0777\nc: 1_000\nd: 2024-01-02\ne: .5\nf: ~\ng: '0777'\nsops:\n  x: 1\n",
    # comments, which only the SOPS tree keeps
    "# head\na: 1 # inline\nlist:\n  - x # item\n  # foot\nsops: {mac: m}\n",
    # several documents, an empty one among them: both keep the same document indexes
    "a: 1\nsops: {mac: m}\n---\n---\nb: &anchor {c: d}\ne: *anchor\nf:\n  <<: *anchor\n",
    "a: 1\n---\nb: 2\n",  # no SOPS metadata: no SOPS tree
]


@pytest.mark.parametrize("text", TEXTS)
def test_one_parse_gives_what_each_loader_gives_alone(text: str) -> None:
    loaded = load_with_sops(text.encode(), file="x.yaml")
    assert loaded.documents == load_bytes(text.encode(), file="x.yaml")
    if "sops" in text:
        assert loaded.sops == sops_yaml.load_yaml(text)
    else:
        assert loaded.sops is None


def test_a_tree_the_sops_limits_refuse_is_left_to_the_decryption_stage() -> None:
    many = "a: &x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"k{n}: *x\n" for n in range(sops_yaml.MAX_ALIAS_NODES // 10 + 2)
    )
    loaded = load_with_sops((many + "sops: {mac: m}\n").encode(), file="x.yaml")
    assert loaded.sops is None  # decrypt_document parses again and raises LimitExceeded there
    assert len(loaded.documents) == 1


def _encrypted(name: str, password: str, recipient: str) -> bytes:
    plain = SECRET.format(name=name, password=password).encode()
    return encrypt_bytes(plain, key_groups=[[AgeRecipient(recipient)]], file=f"{name}.yaml")


@pytest.fixture
def keys(age_key: tuple[str, Path]) -> Callable[[], DecryptionKeys]:
    def fresh() -> DecryptionKeys:
        ring = discover_keyring(age_identity_files=[age_key[1]], use_environment=False)
        return DecryptionKeys(sops=ring)

    return fresh


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts libyaml parses, by either loader (each starts with ``make_loader``)."""
    counted: list[int] = []
    original = sops_yaml.make_loader

    def counting(text: str) -> Any:
        counted.append(len(text))
        return original(text)

    monkeypatch.setattr(sops_yaml, "make_loader", counting)
    monkeypatch.setattr(loader, "make_loader", counting)
    yield counted


def test_a_build_parses_each_sops_file_once(
    repo: Path,
    write: Callable[[str, str | bytes], Path],
    age_key: tuple[str, Path],
    keys: Callable[[], DecryptionKeys],
    parses: list[int],
) -> None:
    for n in range(3):
        write(f"deploy/s{n}.yaml", _encrypted(f"s{n}", f"password-number-{n}", age_key[0]))
    parses.clear()  # encrypting parsed the plaintext
    result = build(root=repo, path="deploy", keys=keys())
    assert [obj.data["stringData"]["password"] for obj in result.objects] == [
        f"password-number-{n}" for n in range(3)
    ]
    assert len(parses) == 3


def test_a_transformed_build_parses_each_sops_file_once(
    repo: Path,
    write: Callable[[str, str | bytes], Path],
    age_key: tuple[str, Path],
    keys: Callable[[], DecryptionKeys],
    kubectl: str,
    parses: list[int],
) -> None:
    for n in range(3):
        write(f"app/s{n}.yaml", _encrypted(f"s{n}", f"password-number-{n}", age_key[0]))
    # commonLabels keeps this build on kustomize (namespace: alone is built without it, where
    # the kustomization and each file are parsed once: tests/render/test_kustomize_native.py)
    write(
        "app/kustomization.yaml",
        "namespace: moved\ncommonLabels: {a: b}\nresources: [s0.yaml, s1.yaml, s2.yaml]\n",
    )
    parses.clear()  # encrypting parsed the plaintext
    result = build(root=repo, path="app", keys=keys())
    assert {obj.id.namespace for obj in result.objects} == {"moved"}
    assert sorted(obj.data["stringData"]["password"] for obj in result.objects) == [
        f"password-number-{n}" for n in range(3)
    ]
    # the kustomization (scan), kustomize's output, and each SOPS file once (it was 3 times)
    assert len(parses) == 2 + 3


def test_decryption_verifies_the_bytes_the_render_stage_read(
    repo: Path,
    write: Callable[[str, str | bytes], Path],
    age_key: tuple[str, Path],
    keys: Callable[[], DecryptionKeys],
) -> None:
    path = write("s.yaml", _encrypted("s", "first-password", age_key[0]))
    files = CommittedFiles(repo.resolve())
    documents = render(repo, ".", files=files)
    # the file changes between the two stages: both still see one and the same commit
    path.write_bytes(_encrypted("s", "second-password", age_key[0]))
    (obj,) = decrypt_documents(documents, root=repo, keys=keys(), files=files)
    assert obj.data["stringData"]["password"] == "first-password"


def test_the_mac_is_still_verified_over_a_shared_tree(
    repo: Path,
    write: Callable[[str, str | bytes], Path],
    age_key: tuple[str, Path],
    keys: Callable[[], DecryptionKeys],
) -> None:
    data = _encrypted("s", "some-password", age_key[0]).replace(b"tier: backend", b"tier: front")
    write("s.yaml", data)
    with pytest.raises(MacMismatch) as raised:
        build(root=repo, path=".", keys=keys())
    assert raised.value.file == "s.yaml"
