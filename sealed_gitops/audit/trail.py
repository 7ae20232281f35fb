"""The audit as one call: a repository path in, change records out.

Why separate from the CLI: the command only parses flags and prints; the operator (``audit
--cluster``, later) and tests call :func:`audit_history` directly and get
:class:`~sealed_gitops.audit.records.ChangeRecord` objects.

Dates: ``since``/``until`` compare with the author date, the date each record shows (when the
change was made; a rebase or cherry-pick keeps it). Both bounds are inclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sealed_gitops.audit.compare import CommitComparer, PlaintextJudge
from sealed_gitops.audit.history import GitHistory, signer_keyring
from sealed_gitops.audit.records import ChangeRecord
from sealed_gitops.errors import ConfigError

__all__ = ["AuditResult", "audit_history", "parse_date"]

#: Called as (commits done, commits in total) while the history is read.
Progress = Callable[[int, int], None]


@dataclass
class AuditResult:
    records: list[ChangeRecord] = field(default_factory=list)
    #: human notes for stderr: whole-file re-encryptions seen without keys, undecryptable versions
    notices: list[str] = field(default_factory=list)
    commits: int = 0


def parse_date(text: str) -> datetime:
    """``2026-01-31``, ``2026-01-31T12:00``, with or without an offset; naive means UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"invalid date {text!r}: use ISO 8601, e.g. 2026-01-31") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _in_window(date: str, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    when = datetime.fromisoformat(date)
    return (since is None or when >= since) and (until is None or when <= until)


def audit_history(
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    object_filter: str | None = None,
    judge: PlaintextJudge | None = None,
    signer_keys: Sequence[bytes] | None = None,
    rev: str = "HEAD",
    progress: Progress | None = None,
) -> AuditResult:
    """Every change of an encrypted value under ``path`` in the history of ``rev``, oldest first.

    A single file is followed back through its renames.

    ``judge`` (a :class:`~sealed_gitops.audit.plaintext.KeyedHasher`) turns on ``--decrypt``;
    ``signer_keys`` (armored public keys) makes signatures count as good only for those keys,
    otherwise git judges them with the user's own GnuPG keyring.
    """
    result = AuditResult()
    with GitHistory(path) as history:
        pathspec = history.relative(path)
        follow = path.is_file()
        if signer_keys:
            with signer_keyring(signer_keys) as env:
                commits = history.commits(pathspec=pathspec, env=env, rev=rev, follow=follow)
        else:
            commits = history.commits(pathspec=pathspec, rev=rev, follow=follow)
        result.commits = len(commits)
        comparer = CommitComparer(read_blob=history.blob, judge=judge)
        for done, commit in enumerate(commits, start=1):
            if progress is not None:
                progress(done, len(commits))
            if not _in_window(commit.date, since, until):
                continue
            for row in comparer.commit_changes(commit):
                if object_filter is not None and row.object != object_filter:
                    continue
                result.records.append(
                    ChangeRecord(
                        commit=commit.sha,
                        date=commit.date,
                        author=commit.author,
                        committer=commit.committer,
                        signature=commit.signature,
                        signer=commit.signer,
                        file=row.file,
                        object=row.object,
                        key=row.key,
                        change=row.change,
                    )
                )
    if comparer.whole_file_reencryptions:
        result.notices.append(
            f"{len(comparer.whole_file_reencryptions)} object(s) got a new data key with every "
            "value re-encrypted (e.g. sops rotate); without keys these values are reported as "
            "'changed' because a re-encryption cannot be told from a change: run with --decrypt "
            "to tell them apart. First: " + comparer.whole_file_reencryptions[0]
        )
    failures = getattr(judge, "failures", None)
    if failures:
        result.notices.append(
            f"{len(failures)} file version(s) could not be decrypted and were compared by "
            f"ciphertext only. First: {failures[0]}"
        )
    return result
