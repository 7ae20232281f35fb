"""Ownership labels and the desired object as applied: pure checks, no cluster needed."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.cluster import COMMIT_ANNOTATION, SYNC_ANNOTATION, SyncRef
from sealed_gitops.cluster.ownership import (
    LAST_APPLIED_ANNOTATION,
    SOURCE_PATH_ANNOTATION,
    with_commit,
)
from sealed_gitops.errors import ConfigError


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("", "a"), ("a", ""), ("a", "x" * 64), ("a/b", "c"), ("a", "-bad"), ("a", "b c")],
)
def test_sync_refs_that_cannot_be_label_values_are_refused(namespace: str, name: str) -> None:
    with pytest.raises(ConfigError):
        SyncRef(namespace, name)


def test_selector_and_owns() -> None:
    sync = SyncRef("team-a", "app")
    assert sync.selector == "sealed-gitops.io/sync-name=app,sealed-gitops.io/sync-namespace=team-a"
    assert sync.owns({"metadata": {"labels": sync.labels}})
    assert not sync.owns({"metadata": {"labels": {**sync.labels,
                                                  "sealed-gitops.io/sync-name": "other"}}})
    assert not sync.owns({"metadata": {}})
    assert not sync.owns(None)


@pytest.mark.parametrize(
    ("obj", "annotations"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}}}, None),
        ({"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "annotations": {"keep": "me"}}}, {"keep": "me"}),
        ({"apiVersion": "v1", "kind": "Secret",
          "metadata": {"name": "s", "annotations": {COMMIT_ANNOTATION: "old"}}},
         {SYNC_ANNOTATION: "ns/app", SOURCE_PATH_ANNOTATION: "deploy/s.yaml"}),
    ],
)
def test_prepare(obj: dict[str, Any], annotations: dict[str, str] | None) -> None:
    original = repr(obj)
    out = SyncRef("ns", "app").prepare(obj, source_path="deploy/s.yaml")
    assert out["metadata"].get("annotations") == annotations
    assert out["metadata"]["labels"] == SyncRef("ns", "app").labels
    assert repr(obj) == original  # the caller's object is untouched


@given(
    data=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.binary(max_size=32)),
    string_data=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                                st.text(max_size=32)),
)
def test_string_data_is_folded_into_data(
    data: dict[str, bytes], string_data: dict[str, str]
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
              "stringData": string_data}
    out = SyncRef("ns", "app").prepare(secret)
    assert "stringData" not in out
    decoded = {k: base64.b64decode(v) for k, v in out["data"].items()}
    assert decoded == {**data, **{k: v.encode() for k, v in string_data.items()}}


def test_commit_annotation_only_on_secrets() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    assert "annotations" not in with_commit(cm, "main@sha1:1")["metadata"]
    assert with_commit(sec, "main@sha1:1")["metadata"]["annotations"] == {
        COMMIT_ANNOTATION: "main@sha1:1"}
    assert with_commit(sec, None) == sec
