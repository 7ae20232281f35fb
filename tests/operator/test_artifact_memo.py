"""A Sync's no-op reconcile reuses its last checkout (operator/artifact_memo.py), and only while
that is still exactly right: same commit, same URL and credentials, the worktree still on disk at
that commit. Run against real git checkouts made by the project's own fetch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sealed_gitops.operator.artifact_memo import checkout_head, remembered_artifact
from sealed_gitops.source import Artifact, Ref
from sealed_gitops.source import fetch as git_fetch
from sealed_gitops.testing.gitserver import WorkRepo


def _remote(tmp_path: Path) -> tuple[Path, WorkRepo]:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = WorkRepo(tmp_path / "work", remote=remote)
    work.write({"deploy/a.yaml": "a: 1\n"})
    work.commit("one")
    work.push()
    return remote, work


class CountingFetch:
    def __init__(self, url: str, commit: str, cache: Path) -> None:
        self.url, self.commit, self.cache, self.calls = url, commit, cache, 0

    def __call__(self) -> Artifact:
        self.calls += 1
        return git_fetch(self.url, Ref(commit=self.commit), cache_dir=self.cache,
                         schemes=frozenset({"file"}))  # fmt: skip


def test_checkout_head_reads_the_commit_of_a_real_worktree_and_none_when_gone(
    tmp_path: Path,
) -> None:
    remote, work = _remote(tmp_path)
    artifact = CountingFetch(f"file://{remote}", work.head(), tmp_path / "cache")()
    assert checkout_head(artifact.path) == work.head()
    assert checkout_head(tmp_path / "nowhere") is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".git").write_text("ref: refs/heads/main\n")
    assert checkout_head(plain) is None


def test_the_same_commit_and_key_reuse_the_checkout_without_fetching(tmp_path: Path) -> None:
    remote, work = _remote(tmp_path)
    fetch = CountingFetch(f"file://{remote}", work.head(), tmp_path / "cache")
    key: tuple[object, ...] = (fetch.url, None, fetch.cache)
    held = remembered_artifact(None, key=key, commit=fetch.commit, fetch=fetch)
    again = remembered_artifact(held, key=key, commit=fetch.commit, fetch=fetch)
    assert again is held and fetch.calls == 1
    assert (again[1].path / "deploy" / "a.yaml").read_text() == "a: 1\n"


def test_other_credentials_a_new_commit_or_a_pruned_checkout_fetch_again(tmp_path: Path) -> None:
    remote, work = _remote(tmp_path)
    fetch = CountingFetch(f"file://{remote}", work.head(), tmp_path / "cache")
    key: tuple[object, ...] = (fetch.url, None, fetch.cache)
    held = remembered_artifact(None, key=key, commit=fetch.commit, fetch=fetch)
    # other credentials (the Repository's Secret changed): the cache must be asked again
    held = remembered_artifact(held, key=(fetch.url, "other-auth", fetch.cache),
                               commit=fetch.commit, fetch=fetch)  # fmt: skip
    assert fetch.calls == 2
    # the checkout pruned by the Git cache: fetched (checked out) again
    shutil.rmtree(held[1].path)
    held = remembered_artifact(held, key=(fetch.url, "other-auth", fetch.cache),
                               commit=fetch.commit, fetch=fetch)  # fmt: skip
    assert fetch.calls == 3 and checkout_head(held[1].path) == fetch.commit
    # a new commit published
    work.write({"deploy/a.yaml": "a: 2\n"})
    fetch.commit = work.commit("two")
    work.push()
    held = remembered_artifact(held, key=(fetch.url, "other-auth", fetch.cache),
                               commit=fetch.commit, fetch=fetch)  # fmt: skip
    assert fetch.calls == 4 and held[1].commit == fetch.commit
    assert (held[1].path / "deploy" / "a.yaml").read_text() == "a: 2\n"
