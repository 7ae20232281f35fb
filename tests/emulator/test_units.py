"""The emulator's pure parts on their own: patches, selectors, field sets, protobuf.

These need no server; properties are checked with hypothesis where a format round-trips.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.testing.kube import managed, protobuf
from sealed_gitops.testing.kube.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_patch,
)
from sealed_gitops.testing.kube.selectors import parse_field_selector, parse_label_selector
from sealed_gitops.testing.kube.status import ApiError

keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
scalars = st.one_of(st.integers(-5, 5), st.text(alphabet="xyz", max_size=3), st.booleans())
documents = st.recursive(
    scalars, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12
)
patches = st.recursive(
    st.one_of(scalars, st.none()),
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@given(doc=st.dictionaries(keys, documents, max_size=4), patch=st.dictionaries(keys, patches))
@settings(max_examples=200)
def test_merge_patch_is_idempotent_and_pure(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    before = repr(doc)
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once
    assert repr(doc) == before  # the input is never mutated


@given(doc=st.dictionaries(keys, documents, max_size=4), patch=st.dictionaries(keys, patches))
@settings(max_examples=200)
def test_strategic_patch_equals_merge_patch_without_lists(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert apply_strategic_patch(doc, patch) == apply_merge_patch(doc, patch)


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3], "b": {"c": "d"}}),
        ([{"op": "add", "path": "/a/0", "value": 0}], {"a": [0, 1, 2], "b": {"c": "d"}}),
        ([{"op": "replace", "path": "/b/c", "value": "e"}], {"a": [1, 2], "b": {"c": "e"}}),
        ([{"op": "remove", "path": "/a/1"}], {"a": [1], "b": {"c": "d"}}),
        ([{"op": "move", "from": "/b/c", "path": "/x"}], {"a": [1, 2], "b": {}, "x": "d"}),
        (
            [{"op": "copy", "from": "/b", "path": "/y"}],
            {"a": [1, 2], "b": {"c": "d"}, "y": {"c": "d"}},
        ),
        ([{"op": "add", "path": "/b/k~1v", "value": 1}], {"a": [1, 2], "b": {"c": "d", "k/v": 1}}),
    ],
)
def test_json_patch_operations(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert apply_json_patch({"a": [1, 2], "b": {"c": "d"}}, ops) == expected


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "test", "path": "/b/c", "value": "nope"}], 422),
        ([{"op": "test", "path": "/missing", "value": 1}], 422),
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "frobnicate", "path": "/a"}], 400),
        ({"op": "add"}, 400),
    ],
)
def test_json_patch_failures(ops: Any, code: int) -> None:
    with pytest.raises(PatchError) as exc:
        apply_json_patch({"a": [1, 2], "b": {"c": "d"}}, ops)
    assert exc.value.code == code


def test_strategic_patch_directives() -> None:
    doc = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}
    patch = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "2"}],
    }
    assert apply_strategic_patch(doc, patch) == {
        "containers": [{"name": "b", "image": "1"}, {"name": "c", "image": "2"}]
    }
    replaced = apply_strategic_patch(
        {"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}
    )
    assert replaced == {"spec": {"c": 3}}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a in (b, c)", {"a": "c"}, True),
        ("a notin (b,c)", {"a": "c"}, False),
        ("a,!b", {"a": "1"}, True),
        ("a,!b", {"a": "1", "b": "2"}, False),
        ("app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True),
    ],
)
def test_label_selector(selector: str, labels: dict[str, str], matches: bool) -> None:
    match = parse_label_selector(selector)
    assert match is not None
    assert match({"metadata": {"labels": labels}}) is matches


@pytest.mark.parametrize("selector", ["a=(", "in (x)", "a==b==c"])
def test_bad_label_selector_is_400(selector: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_label_selector(selector)
    assert exc.value.code == 400


def test_unknown_field_selector_is_400() -> None:
    with pytest.raises(ApiError) as exc:
        parse_field_selector("spec.nodeName=x", plural="configmaps", kind="ConfigMap")
    assert exc.value.code == 400
    match = parse_field_selector("type=Opaque", plural="secrets", kind="Secret")
    assert match is not None
    assert match({"metadata": {"name": "s"}, "type": "Opaque"})


@given(obj=st.dictionaries(keys, documents, min_size=1, max_size=4))
@settings(max_examples=200)
def test_fields_v1_round_trip(obj: dict[str, Any]) -> None:
    paths = managed.field_paths(obj, part="all")
    entries = [managed.Entry("m", "Apply", "v1", "t", paths=paths)]
    assert (
        managed.decode({"metadata": {"managedFields": managed.encode(entries)}})[0].paths == paths
    )


def test_fields_v1_of_keyed_lists() -> None:
    obj = {"spec": {"containers": [{"name": "app", "image": "x"}]}, "metadata": {"name": "n"}}
    assert managed.to_tree(managed.field_paths(obj, part="all")) == {
        "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}}}
    }


# -- protobuf: a tiny encoder so the decoder can be checked against arbitrary content -------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _map(number: int, values: dict[str, bytes]) -> bytes:
    return b"".join(_field(number, _field(1, k.encode()) + _field(2, v)) for k, v in values.items())


names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
data_keys = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)


@given(
    name=names,
    namespace=names,
    labels=st.dictionaries(data_keys, st.text(max_size=10), max_size=3),
    data=st.dictionaries(data_keys, st.binary(max_size=40), max_size=4),
)
def test_protobuf_secret_round_trip(
    name: str, namespace: str, labels: dict[str, str], data: dict[str, bytes]
) -> None:
    meta = _field(1, name.encode()) + _field(3, namespace.encode())
    meta += _map(11, {k: v.encode() for k, v in labels.items()})
    raw = _field(1, meta) + _map(2, data) + _field(3, b"Opaque")
    body = protobuf.MAGIC + _field(1, _field(1, b"v1") + _field(2, b"Secret")) + _field(2, raw)
    obj = protobuf.decode(body)
    assert obj["kind"] == "Secret"
    assert obj["metadata"]["name"] == name
    assert obj["metadata"]["namespace"] == namespace
    assert obj["metadata"].get("labels", {}) == labels
    assert {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()} == data


def test_protobuf_of_an_unknown_kind_is_415() -> None:
    body = protobuf.MAGIC + _field(1, _field(1, b"apps/v1") + _field(2, b"Deployment"))
    with pytest.raises(ApiError) as exc:
        protobuf.decode(body)
    assert exc.value.code == 415
