"""Tag versions and ranges, with the grammar Flux uses (Masterminds semver)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.errors import ConfigError
from sealed_gitops.source.semver import Version, parse_range, parse_version, select_highest

TAGS = ["v0.1.0", "v0.2.5", "v1.0.0", "v1.2.0", "v1.2.9", "v1.3.0-rc.1", "v1.10.0", "v2.0.0",
        "v2.0.0-beta.2", "1.4.0", "release-7", "latest"]  # fmt: skip


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0 <2.0.0", "v1.10.0"),
        (">=1.0.0, <2.0.0", "v1.10.0"),
        ("~1.2", "v1.2.9"),
        ("~1.2.3", "v1.2.9"),
        ("~1", "v1.10.0"),
        ("^1", "v1.10.0"),
        ("^1.2", "v1.10.0"),
        ("^0.2", "v0.2.5"),
        ("^0", "v0.2.5"),
        ("1.2.x", "v1.2.9"),
        ("1.x", "v1.10.0"),
        ("*", "v2.0.0"),
        ("<1.2", "v1.0.0"),
        ("<=1.2", "v1.2.9"),
        (">1.2", "v2.0.0"),
        ("1.2 - 1.4", "1.4.0"),
        ("=1.2.0", "v1.2.0"),
        ("1.0.0", "v1.0.0"),
        ("!=2.0.0 >=1.4", "v1.10.0"),
        ("^3 || ~1.2", "v1.2.9"),
        (">= 1.3.0-0 < 1.4.0", "v1.3.0-rc.1"),  # a pre-release in the range admits pre-releases
        (">=1.3.0 <1.4.0", None),  # but not otherwise
        ("^5", None),
    ],
)
def test_select_highest_matching_tag(range_: str, expected: str | None) -> None:
    assert select_highest(parse_range(range_), TAGS) == expected


@pytest.mark.parametrize("text", ["", "   ", "||", ">=abc", "1.2.3.4", ">>1"])
def test_unreadable_ranges_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_range(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1", Version(1, 0, 0)),
        ("1.2", Version(1, 2, 0)),
        ("v1.2.3-rc.1+build.5", Version(1, 2, 3, ("rc", "1"), "build.5")),
        ("release-1", None),
        ("01.2.3", None),
    ],
)
def test_parse_version_is_lenient_like_flux(text: str, expected: Version | None) -> None:
    assert parse_version(text) == expected


def test_precedence_follows_semver_2() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]  # fmt: skip
    versions = [parse_version(t) for t in ordered]
    assert versions == sorted(versions)  # type: ignore[type-var]


versions = st.builds(
    Version,
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(0, 20),
    st.lists(st.sampled_from(["rc", "1", "beta", "2", "alpha"]), max_size=2).map(tuple),
)


@given(versions)
def test_str_round_trips(version: Version) -> None:
    assert parse_version(str(version)) == version


@given(versions)
def test_tilde_and_caret_contain_their_own_floor(version: Version) -> None:
    text = str(version)
    for op in ("~", "^", ">=", "="):
        assert parse_range(op + text).matches(version)
    assert not parse_range("<" + text).matches(version)
    assert not parse_range(">" + text).matches(version)
