"""The local cache of fetched commits: one bare repository per remote, one worktree per commit.

Why: an operator polls every minute, and most polls find nothing new. With the objects kept here a
poll costs one ``ls-remote``; a commit already in the cache is checked out (or reused) without any
network. Worktrees of a bare repository share its object store, so keeping a few recent commits
checked out is cheap, and a commit's worktree never changes under a reader once made.

Local work goes through GitPython; config from the user and the system is ignored (no filters,
hooks or url rewrites can be smuggled in) and a repository is never configured with templates.
Access to one remote's cache is serialised with an ``flock`` so two reconciles of the same
Repository in one process (or two processes) do not race.

Whose cache: an entry belongs to one remote *and one set of credentials* (issue 11, finding 3).
Keyed by the URL alone, a tenant naming another tenant's private URL with no credentials and a
pinned commit was served the other tenant's objects without the server ever being asked. Now the
entry's directory name is an HMAC, under a random key kept in the cache root (``0600``), of the
credential-free URL and of the credential bytes git presents (:func:`access_material`): a commit
held there was downloaded with exactly those credentials, so serving it again proves nothing new
is handed out. Anonymous callers of one URL still share an entry; other credentials (or rotated
ones) get an entry of their own and download once. Neither the credentials nor a plain hash of
them (which a weak password would not survive) reach the disk, and the directory name has a fixed
hexadecimal shape whatever the URL says, so a hostile URL cannot steer a path.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import git

from sealed_gitops.errors import SourceError
from sealed_gitops.source.transport import base_env

__all__ = ["CommitInfo", "Person", "RepoCache", "default_cache_dir"]

#: Worktrees kept per remote; older ones are removed after a new one is made.
KEEP_WORKTREES = 4
#: An entry nobody used for this many seconds is removed after the next download: rotated
#: credentials leave their old entry behind, and so did the URL-only entries of older versions.
STALE_AFTER = 14 * 24 * 3600.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sealed-gitops" / "git"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    when: datetime


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: Person
    committer: Person
    message: str
    raw: bytes  # the commit object as stored, for signature verification


#: The file in the cache root holding the HMAC key that names entries (random, ``0600``).
KEY_FILE = ".entry-key"
_KEY_BYTES = 32


def _entry_key(root: Path) -> bytes:
    """The cache root's naming key, made once (atomically, so concurrent processes agree)."""
    path = root / KEY_FILE
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            draft = root / f"{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(_KEY_BYTES))
            try:
                os.link(draft, path)  # fails if another process won the race: its key is used
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        key = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot set up the git cache key {path}: {exc.strerror}") from exc
    if len(key) != _KEY_BYTES:
        raise SourceError(f"the git cache key {path} is damaged; remove the cache directory")
    return key


def entry_name(root: Path, url: str, *, access: bytes) -> str:
    """The directory name of the entry for ``url`` fetched with credentials ``access``."""
    message = b"sealed-gitops cache v2\0" + url.encode("utf-8") + b"\0" + access
    return hmac.new(_entry_key(root), message, hashlib.sha256).hexdigest()[:40]


class RepoCache:
    """The cache of one remote fetched with one set of credentials, under ``root``.

    ``access`` is :func:`~sealed_gitops.source.auth.access_material` of the caller (empty when
    anonymous); only its keyed digest is used.
    """

    def __init__(self, root: Path, url: str, *, access: bytes) -> None:
        self.dir = root / entry_name(root, url, access=access)
        self.git_dir = self.dir / "repo.git"
        self.worktrees = self.dir / "worktrees"
        self._repo: git.Repo | None = None

    @contextmanager
    def locked(self) -> Iterator[RepoCache]:
        """Hold the cache's lock; the bare repository is created on first use."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / "lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.utime(lock.fileno())  # last use, for prune_stale
            try:
                self._open()
                yield self
            finally:
                self._repo = None
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _open(self) -> None:
        try:
            if (self.git_dir / "HEAD").exists():
                repo = git.Repo(self.git_dir)
            else:
                repo = git.Repo.init(
                    self.git_dir, bare=True, template="", allow_unsafe_options=True
                )
        except (git.GitError, OSError) as exc:
            raise SourceError(f"cannot open the git cache at {self.git_dir}: {exc}") from exc
        repo.git.update_environment(**base_env())
        self._repo = repo

    def prune_stale(self, *, max_age: float = STALE_AFTER) -> list[str]:
        """Remove the other entries of the cache root unused for ``max_age`` seconds (one whose
        lock another process holds is in use, and left alone); returns the names removed."""
        cutoff = time.time() - max_age
        removed = []
        for entry in self.dir.parent.iterdir():
            if entry == self.dir or entry.name.startswith(".") or not entry.is_dir():
                continue
            lock_path = entry / "lock"
            try:
                if lock_path.stat().st_mtime > cutoff:
                    continue
                with open(lock_path, "a+b") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(entry, ignore_errors=True)
            except (BlockingIOError, FileNotFoundError):
                continue  # in use, or removed by another process meanwhile
            except OSError:
                continue  # not ours to judge (permissions): an old entry costs disk, not safety
            removed.append(entry.name)
        return removed

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            raise RuntimeError("RepoCache used outside locked()")
        return self._repo

    def has_commit(self, sha: str) -> bool:
        try:
            return bool(self.repo.odb.info(bytes.fromhex(sha)).type == b"commit")
        except (git.BadObject, git.BadName, ValueError):
            return False

    def is_shallow(self) -> bool:
        return (self.git_dir / "shallow").exists()

    def ref_commit(self, local_ref: str) -> str | None:
        try:
            return str(self.repo.git.rev_parse("--verify", "--quiet", f"{local_ref}^{{commit}}"))
        except git.GitCommandError:
            return None

    def commit_info(self, sha: str) -> CommitInfo:
        try:
            commit = self.repo.commit(sha)
            raw = self.repo.odb.stream(bytes.fromhex(sha)).read()
        except (ValueError, git.BadObject, git.BadName, git.GitError) as exc:
            raise SourceError(f"commit {sha} is not in the cache") from exc
        return CommitInfo(
            sha=sha,
            author=Person(
                commit.author.name or "", commit.author.email or "", commit.authored_datetime
            ),
            committer=Person(
                commit.committer.name or "", commit.committer.email or "", commit.committed_datetime
            ),
            message=str(commit.message),
            raw=raw,
        )

    def maintain(self) -> None:
        """Pack loose objects when git thinks it is due; in the foreground, so no process is left
        behind. Commits still checked out stay reachable through their worktrees."""
        with suppress(git.GitCommandError):  # an unpacked cache is slower, not wrong
            self.repo.git.execute(["git", "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"])

    def worktree(self, sha: str) -> Path:
        """A checkout of ``sha`` (made once, then reused); old checkouts are pruned."""
        path = self.worktrees / sha
        if (path / ".git").exists() and self._head_of(path) == sha:
            os.utime(path)  # mark as recently used for pruning
            return path
        if path.exists():
            shutil.rmtree(path)
        self.worktrees.mkdir(exist_ok=True)
        try:
            self.repo.git.worktree("prune")
            self.repo.git.worktree("add", "--detach", "--force", str(path), sha)
        except git.GitCommandError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise SourceError(f"cannot check out commit {sha}: {exc.stderr.strip()}") from exc
        self._prune_worktrees(keep=path)
        return path

    def _head_of(self, path: Path) -> str | None:
        try:
            return str(git.Repo(path).head.commit.hexsha)
        except (git.GitError, ValueError, OSError):
            return None

    def _prune_worktrees(self, *, keep: Path) -> None:
        entries = sorted(
            (p for p in self.worktrees.iterdir() if p != keep and p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in entries[KEEP_WORKTREES - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
        if len(entries) >= KEEP_WORKTREES:
            self.repo.git.worktree("prune")
