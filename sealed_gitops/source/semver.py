"""Semantic versions of tags and the ranges a Repository may select them by.

Why our own: a Repository's ``ref: {semver: ">=1.0.0 <2.0.0"}`` must pick the same tag Flux would,
and Flux uses the Masterminds range grammar (comma or space for AND, ``||`` for OR, ``~``, ``^``,
``x`` wildcards, hyphen ranges, lenient ``v1.2`` versions). No small PyPI package implements
exactly that grammar, and it fits in one pure module: every comparator is reduced to a half-open
interval check on :class:`Version`.

Pre-releases follow the usual rule: a version with a pre-release tag is only selected when a
comparator of the same OR-group names a pre-release itself, so ``^1`` never picks ``v2.0.0-rc.1``
or ``v1.5.0-beta``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import total_ordering

from sealed_gitops.errors import ConfigError

__all__ = ["Range", "Version", "parse_range", "parse_version", "select_highest"]

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
# In a range a part may also be a wildcard: 1.x, 1.2.*, *
_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"^(?P<op>!=|>=|=>|<=|=<|~>|[=<>~^])?\s*(?P<ver>\S+)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; ordering is SemVer 2.0 precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = field(default="", compare=False)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after every pre-release of the same triple; numeric identifiers sort
        # numerically and before alphanumeric ones.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        if self.build:
            text += "+" + self.build
        return text


def parse_version(text: str) -> Version | None:
    """Parse a tag name leniently (``v1``, ``1.2``, ``v1.2.3-rc.1+b5``); ``None`` if not semver."""
    m = _VERSION.match(text.strip())
    if m is None:
        return None
    return Version(
        int(m["major"]),
        int(m["minor"] or 0),
        int(m["patch"] or 0),
        tuple(m["pre"].split(".")) if m["pre"] else (),
        m["build"] or "",
    )


@dataclass(frozen=True)
class _Interval:
    """``lower <(=) v <(=) upper``; ``None`` bounds are open; ``excluded`` for ``!=``."""

    lower: Version | None = None
    lower_inclusive: bool = True
    upper: Version | None = None
    upper_inclusive: bool = False
    excluded: tuple[Version, Version] | None = None

    def contains(self, v: Version) -> bool:
        if self.excluded is not None:
            lo, hi = self.excluded
            return not (lo <= v < hi)
        if self.lower is not None and (
            v < self.lower or (v == self.lower and not self.lower_inclusive)
        ):
            return False
        return not (
            self.upper is not None
            and (v > self.upper or (v == self.upper and not self.upper_inclusive))
        )


@dataclass(frozen=True)
class Range:
    """A parsed range: OR of groups, each an AND of intervals."""

    text: str
    groups: tuple[tuple[tuple[_Interval, ...], bool], ...]  # (intervals, allows pre-releases)

    def matches(self, version: Version) -> bool:
        for intervals, allow_pre in self.groups:
            if version.pre and not allow_pre:
                continue
            if all(i.contains(version) for i in intervals):
                return True
        return False


def _partial(text: str, source: str) -> tuple[list[int], tuple[str, ...]]:
    """The leading numeric parts of a partial version (a wildcard ends it) and its pre-release."""
    m = _PARTIAL.match(text)
    if m is None:
        raise ConfigError(f"semver range {source!r}: {text!r} is not a version")
    parts: list[int] = []
    for name in ("major", "minor", "patch"):
        value = m[name]
        if value is None or not value.isdigit():
            break
        parts.append(int(value))
    return parts, tuple(m["pre"].split(".")) if m["pre"] and len(parts) == 3 else ()


def _floor(parts: list[int], pre: tuple[str, ...] = ()) -> Version:
    padded = [*parts, 0, 0, 0][:3]
    return Version(padded[0], padded[1], padded[2], pre)


def _bump(parts: list[int]) -> Version:
    """The first version past the partial version ``parts`` (1.2 -> 1.3.0, 1 -> 2.0.0)."""
    bumped = [*parts[:-1], parts[-1] + 1]
    return _floor(bumped)


def _comparator(op: str, text: str, source: str) -> _Interval:
    parts, pre = _partial(text, source)
    if not parts:  # "*", ">=x": anything
        return _Interval()
    exact = len(parts) == 3
    low = _floor(parts, pre)
    if op in ("", "="):
        return (
            _Interval(lower=low, upper=low, upper_inclusive=True)
            if exact
            else _Interval(lower=low, upper=_bump(parts))
        )
    if op == "!=":
        return _Interval(excluded=(low, _bump(parts) if not exact else _next_patch(low)))
    if op == ">":
        return (
            _Interval(lower=low, lower_inclusive=False) if exact else _Interval(lower=_bump(parts))
        )
    if op in (">=", "=>"):
        return _Interval(lower=low)
    if op == "<":
        return _Interval(upper=low)
    if op in ("<=", "=<"):
        return (
            _Interval(upper=low, upper_inclusive=True) if exact else _Interval(upper=_bump(parts))
        )
    if op in ("~", "~>"):
        # ~1.2.3 and ~1.2 allow patch changes, ~1 allows minor changes.
        return _Interval(lower=low, upper=_bump(parts[:2]))
    # "^": changes that do not modify the left-most non-zero part.
    significant = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
    return _Interval(lower=low, upper=_bump(parts[: significant + 1]))


def _next_patch(v: Version) -> Version:
    return (
        Version(v.major, v.minor, v.patch + 1) if not v.pre else Version(v.major, v.minor, v.patch)
    )


def parse_range(text: str) -> Range:
    """Parse a range such as ``>=1.0.0 <2.0.0``, ``~1.2``, ``^1`` or ``1.2 - 1.4 || 2.x``."""
    if not text.strip():
        raise ConfigError("semver range is empty")
    groups: list[tuple[tuple[_Interval, ...], bool]] = []
    for group in text.split("||"):
        # Operators may be written apart from their version (">= 1.2"): glue them back on.
        glued = re.sub(r"(!=|>=|=>|<=|=<|~>|[=<>~^])\s+", r"\1", group.replace(",", " ")).split()
        if not glued:
            raise ConfigError(f"semver range {text!r} has an empty alternative")
        intervals: list[_Interval] = []
        allow_pre = False
        i = 0
        while i < len(glued):
            if i + 2 < len(glued) and glued[i + 1] == "-":  # hyphen range "1.2 - 1.4.5"
                lo, hi = glued[i], glued[i + 2]
                intervals += [_comparator(">=", lo, text), _comparator("<=", hi, text)]
                allow_pre = allow_pre or "-" in lo or "-" in hi
                i += 3
                continue
            m = _COMPARATOR.match(glued[i])
            if m is None:
                raise ConfigError(f"semver range {text!r}: cannot read {glued[i]!r}")
            intervals.append(_comparator(m["op"] or "", m["ver"], text))
            allow_pre = allow_pre or bool(_partial(m["ver"], text)[1])
            i += 1
        groups.append((tuple(intervals), allow_pre))
    return Range(text=text, groups=tuple(groups))


def select_highest(range_: Range, tags: Iterable[str]) -> str | None:
    """The tag whose version is the highest match of ``range_``; non-semver tags are ignored.

    Two tags with the same precedence (``v1.0.0`` and ``1.0.0``) are broken by name so the choice
    is deterministic.
    """
    best: tuple[Version, str] | None = None
    for tag in tags:
        version = parse_version(tag)
        if version is None or not range_.matches(version):
            continue
        if best is None or (version, tag) > best:
            best = (version, tag)
    return best[1] if best else None
