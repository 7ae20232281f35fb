"""One Secret's page: the audit timeline of each of its keys, and whether the live value is Git's.

Why here and not in ``audit/``: the page joins three sources the audit layer keeps apart. The
timeline is ``sealed-gitops audit`` over the user's local checkout (:func:`audit_history`, the
same records: commit, author, date, signature, added/changed/removed/re-encrypted); the live
side is ``audit --cluster`` (the commit and author annotations the operator writes on a Secret
only when it writes its values); drift corrections come from the Sync's ``DriftCorrected``
Events, which name the objects the operator restored.

"Does the live value match Git?" is answered per key by keyed hashes (HMAC with a key drawn per
process, never shown or stored), only when the user gave keys that open the file: the live Secret
is read with the user's rights, the file at the live commit is decrypted in memory, both sides are
hashed and the values dropped at once. The page shows ``matches``/``differs``/``not compared``,
never a value, a length or a hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_gitops.audit import ChangeRecord, audit_history
from sealed_gitops.audit.snapshot import plain
from sealed_gitops.cluster import (
    AUTHOR_ANNOTATION,
    COMMIT_ANNOTATION,
    SOURCE_PATH_ANNOTATION,
    SYNC_ANNOTATION,
    KubeClient,
)
from sealed_gitops.crypto.sealed_document import KIND as SEALED_KIND
from sealed_gitops.crypto.sealed_document import parse_sealed_secret
from sealed_gitops.crypto.sops import Unwrapper, decrypt_document
from sealed_gitops.crypto.sops.document import detect_format, load_tree
from sealed_gitops.errors import ApiNotFound, ClusterError, SealedGitopsError
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.plan.names import is_label, is_subdomain, object_name, segment
from sealed_gitops.plan.names import namespace as valid_namespace
from sealed_gitops.redact import redact, register

__all__ = ["Comparer", "SecretPage", "TimelineRow", "secret_page"]

#: seconds a git call may take (a checkout's history is the user's, but still bounded)
GIT_TIMEOUT = 30.0
_HEX = re.compile(r"[0-9a-fA-F]{7,64}")
#: longest source path taken from an annotation (Linux's PATH_MAX)
MAX_PATH = 4096


@dataclass
class Comparer:
    """The user's keys, for the live-versus-Git comparison; both None: nothing is compared."""

    sops: Unwrapper | None = None
    sealing: SealingKeyring | None = None
    _key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    @property
    def enabled(self) -> bool:
        return self.sops is not None or self.sealing is not None

    def digest(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).digest()

    def git_digests(self, data: bytes, *, file: str, name: str) -> dict[str, bytes]:
        """Keyed hashes of the values Secret ``name`` gets from ``data`` (a file from Git)."""
        if self.sops is not None:
            try:
                doc = decrypt_document(data, unwrapper=self.sops, file=file)
            except SealedGitopsError:
                doc = None
            if doc is not None:
                for branch in doc.branches:
                    obj = plain(branch)
                    if _names(obj, "Secret", name):
                        return self._secret_digests(obj)
        if self.sealing is not None:
            for branch in load_tree(data, fmt=detect_format(file), file=file):
                obj = plain(branch)
                if _names(obj, SEALED_KIND, name):
                    opened = self.sealing.unseal(parse_sealed_secret(obj, file=file), file=file)
                    return {k: self.digest(v) for k, v in opened.values.items()}
        return {}

    def _secret_digests(self, obj: Mapping[str, Any]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            out[str(key)] = self.digest(base64.b64decode(str(value)))
        for key, value in (obj.get("stringData") or {}).items():
            out[str(key)] = self.digest(str(value).encode())
        return out


def _names(obj: Any, kind: str, name: str) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == kind
        and (obj.get("metadata") or {}).get("name") == name
    )


@dataclass(frozen=True)
class TimelineRow:
    """One change of one key, as the audit records it (``drift`` rows come from Events)."""

    date: str
    key: str
    change: str
    commit: str
    author: str
    signature: str
    signer: str
    drift: bool = False
    live: bool = False  # the commit whose values are live now


@dataclass
class SecretPage:
    namespace: str
    name: str
    sync: str
    file: str
    live_commit: str
    live_author: str
    keys: list[str]
    rows: list[TimelineRow] = field(default_factory=list)
    #: key -> "matches", "differs", "not in Git", or a reason it was not compared
    matches: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _git(checkout: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(checkout), *args],
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )


def _sha(revision: str) -> str:
    """``main@sha1:abc…`` -> ``abc…``; a bare sha stays as it is; anything else is "".

    The annotation is written by whoever may edit the Secret: only a hex object name may reach
    a git command line (``--output=…`` would be an option).
    """
    sha = revision.rsplit(":", 1)[-1] if revision else ""
    return sha.lower() if _HEX.fullmatch(sha) else ""


def _repo_path(path: str) -> str:
    """The annotation's source path if it is a plain relative path inside a checkout, else "".

    Bounded and printable too: a NUL would make ``subprocess`` raise (a 500 instead of a page),
    and a control character has no business in a path git shows.
    """
    parts = path.split("/")
    if (
        not path
        or len(path) > MAX_PATH
        or not path.isprintable()
        or path.startswith(("-", "/"))
        or "\\" in path
        or ".." in parts
        or "" in parts
    ):
        return ""
    return path


def _sync_ref(value: str) -> str:
    """The annotation's ``namespace/name`` of the Sync if both are DNS-1123 names, else "".

    Whoever may edit the Secret writes it; the page links to it and asks the API for its Events.
    """
    ns, slash, name = value.partition("/")
    return value if slash and is_label(ns) and is_subdomain(name) else ""


def _checkout_for(checkouts: Sequence[Path], *, commit: str, file: str) -> Path | None:
    """The first checkout that holds the live commit, else the first that has the file."""
    for checkout in checkouts:
        if commit and _git(checkout, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0:
            return checkout
    for checkout in checkouts:
        if file and (checkout / file).is_file():
            return checkout
    return None


def _drift_rows(
    events: Sequence[Mapping[str, Any]], *, namespace: str, name: str
) -> list[TimelineRow]:
    label = f"Secret {namespace}/{name}"
    rows = []
    for event in events:
        message = str(event.get("message") or "")
        if event.get("reason") == "DriftCorrected" and label in message:
            first = message.splitlines()[0] if message else ""
            rows.append(
                TimelineRow(
                    date=str(event.get("time") or ""),
                    key="",
                    change="drift corrected",
                    commit="",
                    author=redact(first),
                    signature="",
                    signer="",
                    drift=True,
                )
            )
    return rows


def _record_row(record: ChangeRecord, *, live_commit: str) -> TimelineRow:
    return TimelineRow(
        date=record.date,
        key=record.key or "(data key)",
        change=record.change.value,
        commit=record.commit,
        author=record.author,
        signature=record.signature.value,
        signer=record.signer or "",
        live=bool(live_commit) and record.commit == live_commit,
    )


def _read_secret(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    ns = segment(valid_namespace(namespace, field="namespace"))
    try:
        return client.request(
            "GET",
            f"/api/v1/namespaces/{ns}/secrets/{segment(object_name(name, field='name'))}",
            action="read",
            what=f"Secret {namespace}/{name}",
            sensitive=True,
        )
    except ApiNotFound:
        return None


def secret_page(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    checkouts: Sequence[Path],
    comparer: Comparer,
    sync_events: Callable[[str, str], Sequence[Mapping[str, Any]]] | None = None,
) -> SecretPage | None:
    """Everything the Secret's page shows; None when the Secret is not there (or not visible).

    ``sync_events(namespace, name)``: the Events of the Sync that wrote the Secret (their
    ``time``, ``reason`` and redacted ``message``), for the drift corrections.
    """
    secret = _read_secret(client, namespace, name)
    if secret is None:
        return None
    # Values are turned into keyed hashes here and the object's data dropped before anything else.
    live_data = secret.pop("data", None) or {}
    live = {str(k): base64.b64decode(str(v)) for k, v in live_data.items()}
    for value in live.values():
        register(value)
    live_digests = {k: comparer.digest(v) for k, v in live.items()}
    del live, live_data
    notes = (secret.get("metadata") or {}).get("annotations") or {}
    page = SecretPage(
        namespace=namespace,
        name=name,
        sync=_sync_ref(str(notes.get(SYNC_ANNOTATION) or "")),
        file=_repo_path(str(notes.get(SOURCE_PATH_ANNOTATION) or "")),
        live_commit=_sha(str(notes.get(COMMIT_ANNOTATION) or "")),
        live_author=str(notes.get(AUTHOR_ANNOTATION) or ""),
        keys=sorted(live_digests),
    )
    checkout = _checkout_for(checkouts, commit=page.live_commit, file=page.file)
    if not page.file:
        page.notes.append(
            "no usable source-path annotation (not written by sealed-gitops?): no timeline"
        )
    elif checkout is None:
        page.notes.append(
            "no local checkout holds this Secret's file or commit: start the UI with --repo PATH "
            "to see its timeline"
        )
    else:
        try:
            result = audit_history(checkout / page.file, object_filter=f"Secret/{namespace}/{name}")
            page.rows = [_record_row(r, live_commit=page.live_commit) for r in result.records]
            page.notes.extend(redact(n) for n in result.notices)
        except SealedGitopsError as exc:
            page.notes.append(f"audit of {page.file}: {redact(str(exc))}")
    sync_ns, _, sync_name = page.sync.partition("/")
    if sync_events is not None and sync_ns and sync_name:
        page.rows += _drift_rows(sync_events(sync_ns, sync_name), namespace=namespace, name=name)
    # Oldest first in Git's order (a stable sort keeps commits of one second as git lists
    # them), then newest first for the page.
    page.rows.sort(key=lambda r: r.date)
    page.rows.reverse()
    page.matches = _compare(page, checkout, comparer, live_digests)
    return page


def _compare(
    page: SecretPage, checkout: Path | None, comparer: Comparer, live: Mapping[str, bytes]
) -> dict[str, str]:
    if not comparer.enabled:
        return {k: "not compared (no keys given to the UI)" for k in page.keys}
    if checkout is None or not page.file or not page.live_commit:
        return {k: "not compared (no checkout with the live commit)" for k in page.keys}
    shown = _git(checkout, "show", f"{page.live_commit}:{page.file}")
    if shown.returncode != 0:
        return {k: "not compared (the live commit is not in the checkout)" for k in page.keys}
    try:
        git = comparer.git_digests(shown.stdout, file=page.file, name=page.name)
    except (SealedGitopsError, ClusterError) as exc:
        return {k: f"not compared ({type(exc).__name__})" for k in page.keys}
    if not git:
        return {k: "not compared (the keys do not open the file)" for k in page.keys}
    out = {}
    for key in sorted(set(page.keys) | set(git)):
        if key not in git:
            out[key] = "not in Git"
        elif key not in live:
            out[key] = "missing in the cluster"
        else:
            out[key] = "matches" if hmac.compare_digest(git[key], live[key]) else "differs"
    return out
