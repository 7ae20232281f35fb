"""Property tests: the value codec, Shamir, and whole trees round-trip (ours->ours, ours->sops)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
def test_shamir_any_threshold_subset_recovers(secret: bytes, parts: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=2, max_value=parts))
    shares = split(secret, parts=parts, threshold=threshold)
    chosen = data.draw(st.permutations(shares))[:threshold]
    assert combine(chosen) == secret
    assert all(len(s) == len(secret) + 1 for s in shares)
    assert [s[-1] for s in shares] == list(range(1, parts + 1))


keys = st.text(_chars, min_size=1, max_size=10).filter(
    lambda k: k != "sops"
)
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), text,
)
trees = st.dictionaries(
    keys,
    st.recursive(
        json_leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
        max_leaves=8,
    ),
    min_size=1,
    max_size=5,
)


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
    plain = json.dumps(tree, ensure_ascii=False).encode()  # JSON is valid YAML too
    enc = encrypt_bytes(plain, key_groups=[[age_keys[0].recipient]], file=name)
    out = decrypt_bytes(enc, unwrapper=identities, file=name)
    import yaml

    loaded = json.loads(out) if fmt == "json" else yaml.safe_load(out.decode())
    assert _same(loaded, tree)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, fmt=st.sampled_from(["json", "yaml"]))
def test_whole_trees_ours_to_sops(
    tree: dict[str, object], fmt: str, sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey],
    identities: AgeIdentities,
) -> None:
    name = f"h.{fmt}"
    enc = encrypt_bytes(json.dumps(tree, ensure_ascii=False).encode(), key_groups=[[age_keys[0].recipient]], file=name)
    (tmp_path / name).write_bytes(enc)
    import yaml

    theirs = sops("-d", name).stdout.decode()
    ours = decrypt_bytes(enc, unwrapper=identities, file=name).decode()
    # Same data; the bytes may differ where go-yaml quotes a character we write raw (U+10000).
    assert _same(yaml.safe_load(theirs), yaml.safe_load(ours))
