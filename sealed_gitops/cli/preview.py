"""Previews without keys: ``build --no-decrypt`` and the ciphertext-level ``diff``.

Why this module exists: files encrypted only for the cluster (the recommended KeyRing model)
could not be previewed by anyone: ``build`` and ``diff --sync`` failed with "no available key"
(issue 15, Must 6). What a person can know without a key is the shape of every object and, by
comparing ciphertexts between two versions, which keys were added, removed or set anew
(:mod:`sealed_gitops.plan.cipher_diff`). This module renders a revision without decrypting,
checks another revision out of Git to compare with, and turns the comparison into the lines and
JSON rows ``diff`` prints: key names and verdicts only, never a value or a ciphertext.
"""

from __future__ import annotations

import difflib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sealed_gitops.errors import ConfigError, NoMatchingKey, SealedGitopsError
from sealed_gitops.plan import ObjectId
from sealed_gitops.plan.cipher_diff import KeyDiff, compare
from sealed_gitops.redact import Identity, compose, redact
from sealed_gitops.render import Failure, render
from sealed_gitops.render.placement import Placement
from sealed_gitops.render.undecrypted import UndecryptedObject, undecrypted_objects

__all__ = [
    "CipherDifference",
    "checkout",
    "cipher_differences",
    "commit_of_revision",
    "key_lines",
    "render_undecrypted",
]

#: Longest key name printed whole; key names are a tenant's to choose (issue 15, Must 6).
MAX_KEY_NAME = 253
#: Longest time a git command of the preview may take, in seconds.
GIT_TIMEOUT = 60.0


def render_undecrypted(
    root: Path,
    path: str,
    *,
    placement: Placement,
    allow_plain_secrets: bool,
    failures: list[Failure],
) -> list[UndecryptedObject]:
    """The objects under ``root/path`` with placeholders for their encrypted values.

    Nothing is decrypted, not even a generator source: a kustomization that needs a key before
    kustomize can run (a secretGenerator over an encrypted file) fails, and lands in
    ``failures`` like every other failure (see :func:`needs_key`).
    """
    documents = render(root, path, failures=failures)
    return undecrypted_objects(
        documents, placement=placement, allow_plain_secrets=allow_plain_secrets, failures=failures
    )


def needs_key(failure: Failure) -> bool:
    """A failure that only says "a key is needed to render this": not an error of the preview."""
    return isinstance(failure.error, NoMatchingKey)


def commit_of_revision(revision: str) -> str:
    """The commit of a Flux-style revision (``main@sha1:<sha>``, ``sha1:<sha>``) or a bare sha."""
    _, sep, sha = revision.rpartition("sha1:")
    commit = sha if sep else revision
    if not commit or not all(c in "0123456789abcdef" for c in commit.lower()):
        raise ConfigError(f"{revision!r} names no commit")
    return commit


@contextmanager
def checkout(root: Path, revision: str) -> Iterator[Path]:
    """A temporary copy of the tree of ``revision`` of the Git work tree at ``root``.

    ``git archive`` rather than a second work tree: it touches neither the user's index nor
    their branches, and the copy is gone when the block ends. Members are extracted with the
    tarfile "data" filter (no links out of the directory, no device files).
    """
    if revision.startswith("-"):
        raise ConfigError(f"revision {revision!r}: a revision does not start with '-'")
    try:
        archived = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", f"{revision}^{{tree}}"],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"git archive {revision}: {exc}") from None
    if archived.returncode != 0:
        detail = archived.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(
            f"revision {revision!r} is not in the repository at {root}"
            + (f" ({detail[-1]})" if detail else "")
            + ": fetch it first (git fetch)"
        )
    with tempfile.TemporaryDirectory(prefix="sealed-gitops-base-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


@dataclass(frozen=True)
class CipherDifference:
    """One object whose version differs between the two sides, told without a key."""

    label: str
    id: ObjectId | None
    action: str  # "create", "update" or "prune"
    keys: KeyDiff
    #: whether the object carries encrypted values (its keys are then told by ciphertext)
    encrypted: bool
    #: a unified diff of everything but the encrypted values (placeholders, masked Secrets)
    text: str

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.id.kind if self.id else None,
            "group": self.id.group if self.id else None,
            "namespace": self.id.namespace if self.id else None,
            "name": self.id.name if self.id else None,
            "action": self.action,
            "keys": (
                {k: [_key(n) for n in v] for k, v in self.keys.as_dict().items()}
                if self.encrypted
                else None
            ),
            "note": self.keys.note(),
            "diff": redact(self.text),
        }


def _key(name: str) -> str:
    """A key name as printed: printable, bounded (a tenant writes it)."""
    return str(compose(Identity(name[:MAX_KEY_NAME])))


_SIGNS = {"added": "+", "changed": "~", "removed": "-", "unknown": "?"}


def key_lines(keys: KeyDiff, *, prefix: str = "") -> list[str]:
    """``+ key password: added`` lines, as ``diff`` prints a Secret's keys."""
    lines = []
    note = keys.note()
    if note:
        lines.append(f"{prefix}! {note}")
    for verdict, names in keys.as_dict().items():
        lines.extend(f"{prefix}{_SIGNS[verdict]} key {_key(name)}: {verdict}" for name in names)
    return lines


def _identity(obj: UndecryptedObject) -> tuple[str, ...]:
    if obj.id is not None:
        return ("id", obj.id.group, obj.id.kind, obj.id.namespace, obj.id.name)
    return ("doc", obj.file, str(obj.index))


def _label(obj: UndecryptedObject) -> str:
    return obj.id.describe() if obj.id else f"encrypted document {obj.file} (document {obj.index})"


def _dump(obj: dict[str, Any] | None) -> list[str]:
    if not obj:
        return []
    text = yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)


def _without_values(obj: UndecryptedObject | None) -> dict[str, Any] | None:
    """The shown object minus what the key lines say: a Secret's data sections."""
    if obj is None:
        return None
    if obj.encrypted and obj.data.get("kind") == "Secret":
        return {k: v for k, v in obj.data.items() if k not in ("data", "stringData")}
    return obj.data


def _text(old: UndecryptedObject | None, new: UndecryptedObject | None, label: str) -> str:
    before, after = _without_values(old), _without_values(new)
    body = difflib.unified_diff(
        _dump(before),
        _dump(after),
        f"base/{label}" if old is not None else "/dev/null",
        f"head/{label}" if new is not None else "/dev/null",
        n=3,
    )
    return redact("".join(body))


def cipher_differences(
    old: Sequence[UndecryptedObject], new: Sequence[UndecryptedObject]
) -> list[CipherDifference]:
    """Each object that differs between ``old`` and ``new``: by key for encrypted ones (from
    their ciphertexts), as a plain diff for the rest; in ``new``'s order, then what was removed."""
    before = {_identity(o): o for o in old}
    after = {_identity(o): o for o in new}
    found = []
    for ident, obj in after.items():
        prior = before.get(ident)
        keys = compare(prior.cipher if prior else None, obj.cipher)
        text = _text(prior, obj, _label(obj))
        if prior is not None and keys.empty and not text:
            continue
        action = "update" if prior is not None else "create"
        encrypted = obj.encrypted or (prior is not None and prior.encrypted)
        found.append(CipherDifference(_label(obj), obj.id, action, keys, encrypted, text))
    for ident, obj in before.items():
        if ident not in after:
            keys = compare(obj.cipher, None)
            text = _text(obj, None, _label(obj))
            found.append(CipherDifference(_label(obj), obj.id, "prune", keys, obj.encrypted, text))
    return found


def describe_failures(failures: Sequence[Failure]) -> tuple[list[str], bool]:
    """The stderr lines for what a keyless render left out, and whether any was an error (a
    failure that is not just "needs a key")."""
    lines, fatal = [], False
    for failure in failures:
        if needs_key(failure):
            lines.append(f"not previewed (a key is needed to render it): {failure}")
        else:
            lines.append(f"error: {failure}")
            fatal = True
    return lines, fatal


def refuse_if_fatal(failures: Sequence[Failure]) -> None:
    """Raise the first failure that is not just "needs a key" (atomic, as ``build`` is)."""
    for failure in failures:
        if not needs_key(failure):
            error: SealedGitopsError = failure.error
            raise error
