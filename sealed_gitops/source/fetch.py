"""Fetch a ref of a remote into the cache and hand back an :class:`Artifact`: the source phase.

Why this shape: the pipeline needs one call with plain inputs (URL, ref, auth, timeout, cache,
verification) and one plain output (the commit, Flux's revision string, a checkout path, who made
it and who signed it), whatever the transport. The steps, in order:

1. resolve the ref with one ``ls-remote`` (skipped for a commit already in the cache entry of
   these credentials: see :mod:`sealed_gitops.source.cache` for why entries are per credential);
2. fetch only if the cache lacks that commit, shallow (depth 1) by ref name, or by sha for a bare
   commit, with a full fetch as the fallback when a server refuses a sha;
3. verify the commit's signature when asked, *before* anything is checked out;
4. check the commit out as a worktree of the cache (reused if it exists).

Because step 1 always asks the remote, a force-pushed branch is followed at once: the cache is
content-addressed and never answers "which commit is main" from what it saw before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.errors import SourceError
from sealed_gitops.source.auth import DEFAULT_SCHEMES, Auth, access_material, parse_url
from sealed_gitops.source.cache import Person, RepoCache, default_cache_dir
from sealed_gitops.source.refs import Ref, Resolution, parse_ls_remote, resolve
from sealed_gitops.source.transport import Deadline, GitRunner, Session, open_session
from sealed_gitops.source.verify import Verification, verify_commit

__all__ = ["Artifact", "check", "fetch"]

#: Seconds a whole fetch (or check) may take unless the caller says otherwise.
DEFAULT_TIMEOUT = 60.0

_LOCAL_PREFIX = "refs/sealed-gitops/"

# Messages name only credential-free URLs (RemoteUrl.url) and commit ids.
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Artifact:
    """One fetched commit, checked out. ``path`` is read-only by convention: it is shared."""

    url: str  # credential-free
    ref: Ref
    commit: str
    revision: str  # "main@sha1:<sha>", "v1.2.3@sha1:<sha>" or "sha1:<sha>"
    path: Path
    author: Person
    committer: Person
    message: str
    signer: str | None = None  # primary key fingerprint when the signature was verified


def _ls_remote(session: Session, ref: Ref) -> Resolution:
    args = ["ls-remote", "--symref", session.remote.url]
    if ref.semver or ref.tag:
        args.append(f"refs/tags/{ref.tag}" if ref.tag else "refs/tags/*")
    elif ref.branch:
        args.append(f"refs/heads/{ref.branch}")
    else:
        args.append("HEAD")
    result = session.run(args, what=f"listing refs for {ref.describe()}")
    return resolve(ref, parse_ls_remote(result.stdout), url=session.remote.url)


def _fetch_args(cache: RepoCache, session: Session, *refspecs: str, depth: int | None) -> list[str]:
    args = ["--git-dir", str(cache.git_dir), "fetch", "--no-tags", "--no-recurse-submodules"]
    if depth is not None:
        args.append(f"--depth={depth}")
    elif cache.is_shallow():
        args.append("--unshallow")
    return [*args, session.remote.url, *refspecs]


def _local_ref(remote_ref: str) -> str:
    return _LOCAL_PREFIX + remote_ref.removeprefix("refs/")


def _download(cache: RepoCache, session: Session, want: Resolution) -> Resolution:
    """A branch, tag or HEAD: one shallow fetch by name. Returns what was actually fetched."""
    remote_ref = want.remote_ref or "HEAD"
    local = _local_ref(remote_ref)
    session.run(
        _fetch_args(cache, session, f"+{remote_ref}:{local}", depth=1),
        what=f"fetching {remote_ref}",
    )
    if cache.has_commit(want.commit):
        return want
    fetched = cache.ref_commit(local)
    if fetched is None:
        raise SourceError(f"{session.remote.url}: fetching {remote_ref} brought no commit")
    # The ref moved between ls-remote and fetch: what was fetched is newer, so it wins.
    return Resolution(fetched, want.name, want.remote_ref)


def _download_pinned(cache: RepoCache, session: Session, want: Resolution) -> Resolution:
    """A pinned commit: by sha (shallow) first; if the server refuses a bare sha, the history."""
    try:
        session.run(_fetch_args(cache, session, want.commit, depth=1), what="fetching the commit")
    except SourceError:
        # Servers speaking protocol v0 without allowReachableSHA1InWant refuse a bare sha;
        # fetching the branch (or every branch and tag) is slower but always allowed.
        if want.remote_ref:
            refspecs = [f"+{want.remote_ref}:{_local_ref(want.remote_ref)}"]
        else:
            refspecs = [
                f"+refs/heads/*:{_LOCAL_PREFIX}heads/*",
                f"+refs/tags/*:{_LOCAL_PREFIX}tags/*",
            ]
        session.run(
            _fetch_args(cache, session, *refspecs, depth=None),
            what="fetching the history to find the commit",
        )
    if not cache.has_commit(want.commit):
        raise SourceError(f"{session.remote.url}: commit {want.commit} is not on the remote")
    return want


def check(
    url: str,
    ref: Ref | None = None,
    auth: Auth | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    schemes: frozenset[str] = DEFAULT_SCHEMES,
    runner: GitRunner | None = None,
) -> str:
    """The commit ``ref`` points at on the remote, for one ``ls-remote`` and no download."""
    ref = ref or Ref()
    remote = parse_url(url, schemes=schemes)
    if ref.commit and not ref.branch:
        return ref.commit
    with open_session(
        remote, auth, deadline=Deadline(timeout), runner=runner or GitRunner()
    ) as session:
        return _ls_remote(session, ref).commit


def fetch(
    url: str,
    ref: Ref | None = None,
    auth: Auth | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cache_dir: Path | str | None = None,
    verify: Verification | None = None,
    schemes: frozenset[str] = DEFAULT_SCHEMES,
    runner: GitRunner | None = None,
) -> Artifact:
    """Fetch ``ref`` of ``url`` and return a verified checkout of its commit.

    Raises :class:`~sealed_gitops.errors.ConfigError` for input that can never work (a scheme we
    do not support, ssh without known_hosts, a bad ref), :class:`~sealed_gitops.errors.SourceError`
    for what git or the network refused (unreachable, unknown host key, missing ref, timeout), and
    :class:`~sealed_gitops.errors.VerificationFailed` for an unsigned or untrusted commit.
    """
    ref = ref or Ref()
    verify = verify or Verification()
    remote = parse_url(url, schemes=schemes)
    # The entry is keyed by the credentials too: a commit in it was downloaded with these very
    # credentials, so a pinned commit found there may be served without asking the remote.
    cache = RepoCache(
        Path(cache_dir) if cache_dir else default_cache_dir(),
        remote.url,
        access=access_material(remote, auth),
    )
    deadline = Deadline(timeout)
    with (
        open_session(remote, auth, deadline=deadline, runner=runner or GitRunner()) as session,
        cache.locked(),
    ):
        if ref.commit:
            # A commit names its content: no need to ask the remote if we already hold it.
            want = Resolution(
                ref.commit, ref.branch, f"refs/heads/{ref.branch}" if ref.branch else None
            )
        else:
            want = _ls_remote(session, ref)
        if not cache.has_commit(want.commit):
            download = _download_pinned if ref.commit else _download
            want = download(cache, session, want)
            cache.maintain()
            cache.prune_stale()
            log.info("fetched %s at %s", remote.url, want.revision)
        else:
            log.debug("%s at %s: already in the cache", remote.url, want.revision)
        info = cache.commit_info(want.commit)
        signer = verify_commit(want.commit, info.raw, verify)
        path = cache.worktree(want.commit)
    return Artifact(
        url=remote.url,
        ref=ref,
        commit=want.commit,
        revision=want.revision,
        path=path,
        author=info.author,
        committer=info.committer,
        message=info.message,
        signer=signer,
    )
