"""render(): classification, duplicates, and the two failure policies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.errors import FormatError, LimitExceeded, RenderError
from sealed_gitops.render import DocKind, Failure, classify, make_document, render

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: ns\n"
SOPS_META = {"mac": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "age": [{"recipient": "a"}]}


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, DocKind.PLAIN),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dg=="}},
         DocKind.PLAIN_SECRET),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "stringData": {}},
         DocKind.PLAIN_SECRET),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "type": "Opaque"},
         DocKind.PLAIN),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "ENC[]"},
          "sops": SOPS_META}, DocKind.SOPS),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
          "sops": {"pgp": [{"fp": "ABC"}]}}, DocKind.SOPS),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
          "sops": "not metadata"}, DocKind.PLAIN),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "sops": {}},
         DocKind.PLAIN),
        ({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "a"},
          "spec": {"encryptedData": {"k": "AgB="}}}, DocKind.SEALED),
    ],
)
def test_classification(doc: dict[str, Any], kind: DocKind) -> None:
    assert classify(doc) is kind
    assert make_document(doc, file="f.yaml", index=0).kind is kind


@pytest.mark.parametrize(
    ("doc", "missing"),
    [
        ({"apiVersion": "v1", "metadata": {"name": "a"}}, "kind"),
        ({"kind": "ConfigMap", "metadata": {"name": "a"}}, "apiVersion"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata.name"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ""}}, "metadata.name"),
        ({"apiVersion": "v1", "kind": 3, "metadata": {"name": "a"}}, "kind"),
        (["a", "list"], "mapping"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a_b"}}, "'_'"),
    ],
)
def test_invalid_documents_name_file_and_index(doc: Any, missing: str) -> None:
    with pytest.raises(FormatError) as info:
        make_document(doc, file="deploy/x.yaml", index=3)
    assert str(info.value).startswith("deploy/x.yaml (document 3): ")
    assert missing in str(info.value)


def test_a_sops_document_with_encrypted_identity_has_no_id() -> None:
    doc = {"apiVersion": "ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]", "kind": "ENC[...]",
           "metadata": {"name": "ENC[...]"}, "sops": SOPS_META}
    rendered = make_document(doc, file="f.yaml", index=0)
    assert rendered.kind is DocKind.SOPS and rendered.id is None


def test_render_walks_in_a_deterministic_order(repo: Path, write: Callable[..., Path]) -> None:
    write("b.yaml", CM.format(name="b2") + "---\n" + CM.format(name="b1"))
    write("a/z.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}')
    write("c.yml", "---\n# nothing\n")
    docs = render(repo)
    assert [(d.file, d.index, d.id.name if d.id else None) for d in docs] == [
        ("a/z.json", 0, "j"), ("b.yaml", 0, "b2"), ("b.yaml", 1, "b1"),
    ]
    assert render(repo) == docs


def test_duplicates_are_refused_naming_both_places(
    repo: Path, write: Callable[..., Path]
) -> None:
    write("one.yaml", CM.format(name="same"))
    write("two.yaml", CM.format(name="other") + "---\n" + CM.format(name="same"))
    with pytest.raises(RenderError) as info:
        render(repo)
    text = str(info.value)
    assert "ConfigMap ns/same" in text
    assert "one.yaml (document 0)" in text and "two.yaml (document 1)" in text


def test_same_name_in_other_namespace_or_group_is_no_duplicate(
    repo: Path, write: Callable[..., Path]
) -> None:
    write("a.yaml", CM.format(name="x"))
    write("b.yaml", CM.format(name="x").replace("namespace: ns", "namespace: other"))
    write("c.yaml", CM.format(name="x").replace("apiVersion: v1", "apiVersion: example.com/v1"))
    assert len(render(repo)) == 3


def test_atomic_raises_on_the_first_failure(repo: Path, write: Callable[..., Path]) -> None:
    write("a.yaml", "apiVersion: v1\nmetadata: {name: nokind}\n")
    write("b.yaml", b"a: \xff\n")
    with pytest.raises(FormatError, match=r"^a\.yaml \(document 0\): no kind"):
        render(repo)


def test_isolate_collects_failures_and_keeps_the_rest(
    repo: Path, write: Callable[..., Path]
) -> None:
    write("a.yaml", CM.format(name="good") + "---\napiVersion: v1\nmetadata: {name: nokind}\n")
    write("b.yaml", b"kind: x\nname: \xff\n")
    write("c.yaml", "a: [unclosed\n")
    write("d.yaml", b"a: " + b"x" * (6 * 1024 * 1024))
    write("e.yaml", CM.format(name="dup"))
    write("f.yaml", CM.format(name="dup"))
    write("g.yaml", CM.format(name="fine"))
    failures: list[Failure] = []
    docs = render(repo, failures=failures)
    assert [d.id.name for d in docs if d.id] == ["good", "fine"]
    got = [(f.file, f.index, f.object, type(f.error)) for f in failures]
    assert got == [
        ("a.yaml", 1, None, FormatError),
        ("b.yaml", None, None, FormatError),
        ("c.yaml", 0, None, FormatError),
        ("d.yaml", None, None, LimitExceeded),
        ("e.yaml", 0, "ConfigMap ns/dup", RenderError),
        ("f.yaml", 0, "ConfigMap ns/dup", RenderError),
    ]
    assert str(failures[0]) == "a.yaml (document 1): no kind"
    assert "not UTF-8" in failures[1].reason
    assert "f.yaml (document 0)" in failures[4].reason


def test_a_non_string_namespace_is_refused(repo: Path, write: Callable[..., Path]) -> None:
    write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: [1]}\n")
    failures: list[Failure] = []
    assert render(repo, failures=failures) == []
    assert failures[0].reason == "metadata.namespace is not a string"
