"""The audit record: one change of one encrypted value, and nothing that could reveal the value.

Why a module of its own: the ``audit`` command reads records out of Git history, and other faces
(the demo, tests) consume them without Git. The operator's audit lines (``audit.log``) carry the
same ``commit`` and ``object`` fields, so a log pipeline can join "who committed it" with "when
it went live" on them.

A record holds names only: the commit, people, the file, the object, the key path and the kind
of change. There is deliberately no field that could carry a value, a ciphertext or a digest of a
plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["ROW_FIELDS", "Change", "ChangeRecord", "SignatureStatus", "object_label"]


class Change(StrEnum):
    """What happened to one value in one commit."""

    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"
    #: new ciphertext, same plaintext (proven with keyed hashes, so only with keys)
    RE_ENCRYPTED = "re-encrypted"
    #: the data key was re-wrapped for other master keys; no value's ciphertext changed
    RECIPIENTS_CHANGED = "recipients-changed"


class SignatureStatus(StrEnum):
    """The commit's signature as the verifier saw it."""

    GOOD = "good"
    #: the signature does not verify, or its key is expired or revoked
    BAD = "bad"
    #: signed, but by a key the verifier does not hold
    UNKNOWN_KEY = "unknown-key"
    NONE = "none"


#: The JSON fields of a record, in output order (the issue fixes this list exactly).
ROW_FIELDS = (
    "commit",
    "date",
    "author",
    "committer",
    "signature",
    "signer",
    "file",
    "object",
    "key",
    "change",
)


def object_label(kind: str, namespace: str, name: str) -> str:
    """``Kind/namespace/name``; a cluster-scoped or namespace-less object has an empty middle."""
    return f"{kind}/{namespace}/{name}"


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One row of the audit: who changed which value of which object, when, and how.

    ``key`` is in sops' path syntax (``["stringData"]["password"]``) and is ``None`` for a
    ``recipients-changed`` record, which concerns the file's data key rather than one value.
    ``object`` is ``None`` for an encrypted file that is not a Kubernetes manifest.
    """

    commit: str
    #: ISO 8601 author date: when the change was made (a rebase keeps it)
    date: str
    author: str
    committer: str
    signature: SignatureStatus
    signer: str | None
    file: str
    object: str | None
    key: str | None
    change: Change

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object with exactly :data:`ROW_FIELDS`."""
        return {
            "commit": self.commit,
            "date": self.date,
            "author": self.author,
            "committer": self.committer,
            "signature": self.signature.value,
            "signer": self.signer,
            "file": self.file,
            "object": self.object,
            "key": self.key,
            "change": self.change.value,
        }
