"""Which commit a Repository's ``ref`` points at, decided from one ``git ls-remote``.

Why a module of its own: resolving a ref is pure once the remote's refs are listed, and keeping it
pure means the cache can answer "is there a new commit?" with a single network round trip and the
rules (precedence, annotated tags, semver selection, Flux's revision strings) can be tested without
a server.

Precedence follows Flux's GitRepository: ``commit`` beats ``semver`` beats ``tag`` beats ``branch``;
a ``commit`` given with a ``branch`` is fetched from that branch and named after it. A ref with
nothing set follows the remote's ``HEAD``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sealed_gitops.errors import ConfigError, SourceError
from sealed_gitops.source import semver

__all__ = ["Ref", "RemoteRefs", "Resolution", "format_revision", "parse_ls_remote", "resolve"]

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
# What git check-ref-format refuses, roughly; enough to keep option-like or odd names out of argv.
_BAD_REF = re.compile(r"(^-)|(\.\.)|[\x00-\x20~^:?*\[\\\x7f]|(@\{)|(\.lock$)|(/$)|(^/)")


@dataclass(frozen=True)
class Ref:
    """What to fetch. Set at most one of ``tag``/``semver``; ``commit`` may come with ``branch``."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("branch", self.branch), ("tag", self.tag)):
            if value is not None and (not value or _BAD_REF.search(value)):
                raise ConfigError(f"invalid {label} name {value!r}")
        if self.commit is not None and not _SHA1.fullmatch(self.commit):
            raise ConfigError(f"commit must be a full 40-character sha1, got {self.commit!r}")
        if self.semver is not None:
            semver.parse_range(self.semver)  # fail early on a range that cannot be read
        if self.tag is not None and self.semver is not None:
            raise ConfigError("ref sets both tag and semver; choose one")

    @classmethod
    def parse(cls, text: str) -> Ref:
        """Read the CLI form: ``branch:main``, ``tag:v1.2.3``, ``semver:^1``, ``commit:<sha>``,
        or a bare name (a 40-hex sha is a commit, anything else a branch)."""
        kind, sep, value = text.partition(":")
        if sep and kind in ("branch", "tag", "semver", "commit"):
            return cls(**{kind: value})
        if _SHA1.fullmatch(text):
            return cls(commit=text)
        return cls(branch=text)

    @classmethod
    def from_spec(cls, spec: Mapping[str, object] | None) -> Ref:
        """Build from a CR's ``spec.ref`` mapping (``{branch: main}`` and so on)."""
        if not spec:
            return cls()
        unknown = set(spec) - {"branch", "tag", "semver", "commit"}
        if unknown:
            raise ConfigError(f"unknown ref field(s): {', '.join(sorted(unknown))}")
        values = {k: str(v) for k, v in spec.items() if v not in (None, "")}
        return cls(**values)

    def describe(self) -> str:
        if self.commit:
            return f"commit {self.commit}" + (f" on branch {self.branch}" if self.branch else "")
        if self.semver:
            return f"semver {self.semver!r}"
        if self.tag:
            return f"tag {self.tag}"
        if self.branch:
            return f"branch {self.branch}"
        return "the remote HEAD"


@dataclass(frozen=True)
class RemoteRefs:
    """The remote's refs from ``git ls-remote --symref``: name -> commit sha (tags peeled)."""

    refs: Mapping[str, str]
    head_target: str | None = None  # "refs/heads/main" when the remote says where HEAD points

    def tags(self) -> list[str]:
        return sorted(n.removeprefix("refs/tags/") for n in self.refs if n.startswith("refs/tags/"))


@dataclass(frozen=True)
class Resolution:
    """A ref resolved against a remote: the commit, and the refspec that fetches it by name."""

    commit: str
    name: str | None  # branch or tag name for the revision string; None for a bare commit
    remote_ref: str | None  # "refs/heads/main", "refs/tags/v1"; None when only the sha is known

    @property
    def revision(self) -> str:
        return format_revision(self.name, self.commit)


def format_revision(name: str | None, commit: str) -> str:
    """Flux's revision string: ``main@sha1:<sha>``, ``v1.2.3@sha1:<sha>`` or ``sha1:<sha>``."""
    return f"{name}@sha1:{commit}" if name else f"sha1:{commit}"


def parse_ls_remote(output: str) -> RemoteRefs:
    """Parse ``git ls-remote --symref`` output. Annotated tags are peeled to their commit."""
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    head_target = None
    for line in output.splitlines():
        if line.startswith("ref: "):
            target, _, name = line[5:].partition("\t")
            if name == "HEAD":
                head_target = target
            continue
        sha, _, name = line.partition("\t")
        if not _SHA1.fullmatch(sha) or not name:
            continue
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            refs[name] = sha
    refs.update(peeled)  # the peeled commit wins over the tag object's sha
    return RemoteRefs(refs=refs, head_target=head_target)


def resolve(ref: Ref, remote: RemoteRefs, *, url: str) -> Resolution:
    """Pick the commit ``ref`` names on the remote; ``SourceError`` if it is not there."""
    if ref.commit:
        if ref.branch:
            if f"refs/heads/{ref.branch}" not in remote.refs:
                raise SourceError(f"{url}: branch {ref.branch!r} not found on the remote")
            return Resolution(ref.commit, ref.branch, f"refs/heads/{ref.branch}")
        return Resolution(ref.commit, None, None)
    if ref.semver:
        chosen = semver.select_highest(semver.parse_range(ref.semver), remote.tags())
        if chosen is None:
            raise SourceError(f"{url}: no tag matches semver range {ref.semver!r}")
        return Resolution(remote.refs[f"refs/tags/{chosen}"], chosen, f"refs/tags/{chosen}")
    if ref.tag:
        sha = remote.refs.get(f"refs/tags/{ref.tag}")
        if sha is None:
            raise SourceError(f"{url}: tag {ref.tag!r} not found on the remote")
        return Resolution(sha, ref.tag, f"refs/tags/{ref.tag}")
    if ref.branch:
        sha = remote.refs.get(f"refs/heads/{ref.branch}")
        if sha is None:
            raise SourceError(f"{url}: branch {ref.branch!r} not found on the remote")
        return Resolution(sha, ref.branch, f"refs/heads/{ref.branch}")
    target = remote.head_target
    sha = remote.refs.get(target) if target else None
    sha = sha or remote.refs.get("HEAD")
    if sha:
        if target and target.startswith("refs/heads/"):
            return Resolution(sha, target.removeprefix("refs/heads/"), target)
        return Resolution(sha, None, "HEAD")
    raise SourceError(f"{url}: the remote has no HEAD; set a branch, tag, semver or commit")
