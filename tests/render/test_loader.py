"""The safe loader: limits, strictness, and that errors name the file and the document."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yaml.nodes import ScalarNode
from yaml.resolver import BaseResolver

from sealed_gitops.crypto.sops.yaml_load import PLAIN_TAG
from sealed_gitops.errors import FormatError, LimitExceeded
from sealed_gitops.render.loader import Limits, load_bytes
from sealed_gitops.render.yaml_values import CoreResolver, core_tag


def billion_laughs(levels: int = 9) -> bytes:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("data", "json_format", "error", "fragment"),
    [
        (billion_laughs(), False, LimitExceeded, "alias"),
        (b"a: &a [*a]\n", False, LimitExceeded, "recursive alias"),
        (b"a: 1\nb: 2\na: 3\n", False, FormatError, "duplicate key 'a'"),
        (b'{"a": 1, "a": 2}', True, FormatError, "duplicate key 'a'"),
        (b"kind: ConfigMap\nname: caf\xe9\n", False, FormatError, "not UTF-8"),
        (b"a: [1, 2\n", False, FormatError, "line"),
        (b'{"a": ', True, FormatError, "line 1"),
        (b"a: !!binary aGVsbG8=\n", False, FormatError, "unsupported tag"),
        (b"a: !custom x\n", False, FormatError, "unsupported tag"),
        (b"? [1, 2]\n: x\n", False, FormatError, "scalar"),
    ],
    ids=["alias-bomb", "recursive-alias", "dup-yaml", "dup-json", "non-utf8", "bad-yaml",
         "bad-json", "binary", "unknown-tag", "complex-key"],
)
def test_bad_input_is_refused_with_file_name(
    data: bytes, json_format: bool, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        load_bytes(data, file="deploy/bad.yaml", json_format=json_format)
    text = str(info.value)
    assert text.startswith("deploy/bad.yaml")
    assert fragment in text


def test_alias_bomb_is_refused_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(LimitExceeded):
        load_bytes(billion_laughs(12), file="bomb.yaml")
    assert time.perf_counter() - start < 1.0


def test_error_names_the_document_index() -> None:
    data = b"a: 1\n---\nb: 2\n---\nc: 1\nc: 2\n"
    with pytest.raises(FormatError) as info:
        load_bytes(data, file="f.yaml")
    assert "(document 2)" in str(info.value)


def test_six_mib_file_is_refused() -> None:
    data = b"a: " + b"x" * (6 * 1024 * 1024) + b"\n"
    with pytest.raises(LimitExceeded) as info:
        load_bytes(data, file="big.yaml")
    assert "big.yaml" in str(info.value)


def test_document_count_is_bounded() -> None:
    data = b"".join(b"---\na: %d\n" % i for i in range(11))
    with pytest.raises(LimitExceeded) as info:
        load_bytes(data, file="many.yaml", limits=Limits(max_documents=10))
    assert "more than 10 documents" in str(info.value)


def test_aliases_within_limits_are_expanded() -> None:
    docs = load_bytes(b"base: &b {x: 1}\nuse: *b\nmerged:\n  <<: *b\n  y: 2\n", file="f.yaml")
    assert docs == [(0, {"base": {"x": 1}, "use": {"x": 1}, "merged": {"x": 1, "y": 2}})]


def test_empty_documents_are_skipped_and_indexes_kept() -> None:
    docs = load_bytes(b"---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n", file="f.yaml")
    # The first "---" opens document 0 (empty); "a" is in document 1, "b" in document 3.
    assert docs == [(1, {"a": 1}), (3, {"b": 2})]


def test_key_order_is_kept() -> None:
    ((_, doc),) = load_bytes(b"zeta: 1\nalpha: 2\nmid: {b: 1, a: 2}\n", file="f.yaml")
    assert list(doc) == ["zeta", "alpha", "mid"]
    assert list(doc["mid"]) == ["b", "a"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("no", "no"),
        ("true", True),
        ("False", False),
        ("0644", 420),
        ("0o17", 15),
        ("0x1F", 31),
        ("42", 42),
        ("-7", -7),
        ("1.5", 1.5),
        ("~", None),
        ("null", None),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("'0644'", "0644"),
        ("1_000", "1_000"),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    ((_, doc),) = load_bytes(f"v: {text}\n".encode(), file="f.yaml")
    assert doc["v"] == value
    assert type(doc["v"]) is type(value)


def test_bom_is_tolerated_and_json_null_is_empty() -> None:
    assert load_bytes(b"\xef\xbb\xbfa: 1\n", file="f.yaml") == [(0, {"a": 1})]
    assert load_bytes(b"null", file="f.json", json_format=True) == []


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=12),
        st.sampled_from(["", "~", "null", "<<", "0x1F", "0o17", "-.inf", ".NaN", "1e3", "TRUE"]),
    ),
)
def test_the_fast_tag_table_agrees_with_pyyamls_resolver(value: str) -> None:
    # The parse leaves plain scalars tagged PLAIN_TAG and core_tag resolves them from a table
    # frozen out of CoreResolver: the same tag as PyYAML's generic resolve() over it.
    resolver = CoreResolver()
    expected = BaseResolver.resolve(resolver, ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    assert core_tag(ScalarNode(PLAIN_TAG, value)) == expected
    # a quoted or tagged scalar keeps the tag the parser gave it
    assert core_tag(ScalarNode("tag:yaml.org,2002:str", value)) == "tag:yaml.org,2002:str"
