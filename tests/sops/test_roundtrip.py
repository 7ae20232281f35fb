"""Property tests: the value codec, Shamir, and whole trees round-trip (ours->ours, ours->sops)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import decrypt_bytes, encrypt_bytes
from sealed_gitops.crypto.sops.shamir import combine, split
from sealed_gitops.crypto.sops.values import decrypt_value, encrypt_value, format_float_f

from .conftest import AgeKey, SopsRun

KEY = bytes(range(32))
# Printable text: YAML itself cannot carry unpaired surrogates or non-characters such as U+FFFE.
_chars = st.characters(
    blacklist_categories=("Cs", "Cn", "Co", "Cc"), blacklist_characters="\ufeff\ufffe\uffff\x85\x7f"
)
text = st.text(_chars, max_size=40)
scalars = st.one_of(
    text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@given(value=scalars, path=st.lists(st.text(min_size=1, max_size=8), max_size=4))
def test_value_codec_round_trips(value: object, path: list[str]) -> None:
    aead = AESGCM(KEY)
    aad = ":".join(path) + ":"
    enc = encrypt_value(aead, value, aad)
    if value == "":
        assert enc == ""
        return
    back, _ = decrypt_value(aead, enc, aad)
    assert type(back) is type(value)
    if isinstance(value, float):
        assert back == value and math.copysign(1, back) == math.copysign(1, value)
    else:
        assert back == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_is_exact_and_exponent_free(value: float) -> None:
    out = format_float_f(value)
    assert "e" not in out and float(out) == value


@given(
    secret=st.binary(min_size=1, max_size=40),
    parts=st.integers(min_value=2, max_value=6),
    data=st.data(),
)
def test_shamir_any_threshold_subset_recovers(
    secret: bytes, parts: int, data: st.DataObject
) -> None:
    threshold = data.draw(st.integers(min_value=2, max_value=parts))
    shares = split(secret, parts=parts, threshold=threshold)
    chosen = data.draw(st.permutations(shares))[:threshold]
    assert combine(chosen) == secret
    assert all(len(s) == len(secret) + 1 for s in shares)
    assert [s[-1] for s in shares] == list(range(1, parts + 1))


# Every character YAML can carry except "<<": sops writes that string as the merge key
# (``!!merge <<``), which every YAML reader, sops included, then takes for a merge, so sops
# itself cannot carry it. Surrogates cannot be encoded in UTF-8 at all.
_tree_chars = st.characters(exclude_categories=["Cs"])
tree_text = st.text(_tree_chars, max_size=12).filter(lambda t: t != "<<") | st.sampled_from(
    ["a\n", "\n", "a\n\n", " a\nb", "a \nb", "a\n b", "yes", "1:20", "a\u2028b", "- a", "#x",
     "a: b", "a #b", "'", "\t", "a\tb\nc", "\U00010000", "2001-01-01", "0o17", "1_0", "~", ""]
)
keys = tree_text.filter(lambda k: k not in ("sops", ""))
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), tree_text,
)


def _indicator_ok(value: object) -> bool:
    """False for a multi-line string that starts with a space or break anywhere inside ``value``.

    Inside a sequence go-yaml writes such a string as ``|4`` with its lines indented from the
    dash column instead of from where YAML counts the indicator, so sops writes a file that no
    YAML reader reads back: sops cannot carry that value in a list.
    """
    if isinstance(value, str):
        return not ("\n" in value and value[:1] in (" ", *_BREAKS))
    if isinstance(value, dict):
        return all(_indicator_ok(k) and _indicator_ok(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_indicator_ok(v) for v in value)
    return True


_BREAKS = ("\r", "\n", "\x85", "\u2028", "\u2029")
trees = st.dictionaries(
    keys,
    st.recursive(
        json_leaves,
        lambda children: st.lists(children.filter(_indicator_ok), max_size=3)
        | st.dictionaries(keys, children, max_size=3),
        max_leaves=8,
    ),
    min_size=1,
    max_size=5,
)
# What a YAML reader refuses raw (controls, U+FFFE...) or reads as a line break goes in as an
# escape; JSON's \u escapes are YAML double-quoted escapes too.
_RAW_UNSAFE = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _source(tree: dict[str, object]) -> bytes:
    """The tree as JSON text, which is YAML too."""
    text = json.dumps(tree, ensure_ascii=False)
    return _RAW_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def _read(out: bytes, fmt: str) -> object:
    """Read a decrypted file with a YAML 1.2 reader that is not ours (sops writes 5e+06)."""
    if fmt == "json":
        return json.loads(out)
    reader = YAML(typ="safe", pure=True)
    # A plain "=" is YAML 1.1's value key; sops (go-yaml) and we write the string "=" unquoted,
    # and both read it back as a string: so must this reader.
    reader.constructor.add_constructor(
        "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
    )
    return reader.load(out.decode())


def _keys(tree: object) -> list[str]:
    if isinstance(tree, dict):
        return [*tree, *(k for v in tree.values() for k in _keys(v))]
    if isinstance(tree, list):
        return [k for v in tree for k in _keys(v)]
    return []


def _same(a: object, b: object) -> bool:
    """Equal, numbers by value: like sops, 1.0 and 6.1e16 are written in integer form."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-15, abs_tol=0)
    return a == b


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, fmt=st.sampled_from(["json", "yaml"]))
def test_whole_trees_round_trip_ours_to_ours(
    tree: dict[str, object], fmt: str, age_keys: list[AgeKey], identities: AgeIdentities
) -> None:
    name = f"t.{fmt}"
    enc = encrypt_bytes(_source(tree), key_groups=[[age_keys[0].recipient]], file=name)
    out = decrypt_bytes(enc, unwrapper=identities, file=name)
    assert _same(_read(out, fmt), tree)


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees, fmt=st.sampled_from(["json", "yaml"]))
def test_whole_trees_ours_to_sops(
    *, tree: dict[str, object], fmt: str, sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey],
    identities: AgeIdentities,
) -> None:
    name = f"h.{fmt}"
    enc = encrypt_bytes(_source(tree), key_groups=[[age_keys[0].recipient]], file=name)
    (tmp_path / name).write_bytes(enc)
    theirs = sops("-d", name).stdout
    ours = decrypt_bytes(enc, unwrapper=identities, file=name)
    assert _same(_read(theirs, fmt), tree)
    if any(c in k for k in _keys(tree) for c in _BREAKS):
        # Not done: go-yaml writes a key with a line break as a complex key (``? |``); ours
        # writes it double-quoted. Same data (checked above), different bytes.
        assert _same(_read(ours, fmt), tree)
    else:
        assert ours == theirs
