"""The client decodes API answers with orjson where it reads them as ``json`` does (issue 16).

Why: orjson halves the cost of the largest item of a no-op reconcile (the labelled LISTs), but it
reads some JSON differently (an integer beyond 64 bits becomes a float) or not at all (``NaN``,
lone surrogates, UTF-16). ``decode_json`` must give exactly what ``json.loads`` gives, types
included, and fail where it fails.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.cluster import client
from sealed_gitops.cluster.client import decode_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (1 == 1.0 in Python; not here), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(JSON_VALUES)
def test_any_json_decodes_as_the_standard_parser_decodes_it(value: Any) -> None:
    data = json.dumps(value).encode()
    assert _same(decode_json(data), json.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b'{"big": 123456789012345678901234567890, "small": 1}',  # orjson: a float
        b"[-9223372036854775809, 18446744073709551616]",  # just outside 64 bits
        b'{"x": NaN, "y": -Infinity}',
        b"1E400",
        b'"\\ud800"',  # a lone surrogate escape
        b'{"a": 1, "a": 2}',  # the later key wins in both
        '{"name": "é"}'.encode("utf-16"),
        b'{"id": "12345678901234567890 in a string"}',
    ],
)
def test_what_orjson_reads_differently_decodes_as_json_does(data: bytes) -> None:
    assert _same(decode_json(data), json.loads(data))


@pytest.mark.parametrize("data", [b"{bad", b"", b"\xff\xfe\x00", b'{"a": 1} trailing'])
def test_invalid_answers_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(ValueError):
        decode_json(data)


def test_without_orjson_the_standard_parser_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    # an image built from a lock without orjson still decodes every answer
    monkeypatch.setattr(client, "orjson", None)
    data = b'{"items": [{"n": 1, "f": 2.5, "big": 123456789012345678901234567890}]}'
    assert _same(decode_json(data), json.loads(data))
