"""Paths a healthy server rarely takes: old protocol servers, refs that move mid-fetch,
concurrent fetches of one remote, and bearer tokens."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from sealed_gitops.errors import SourceError
from sealed_gitops.source import GitResult, HttpAuth, Ref, check, fetch
from tests.source.conftest import CountingRunner, Origin


class ShaRefusingRunner(CountingRunner):
    """Answers a fetch by bare sha the way a protocol v0 server without
    ``uploadpack.allowReachableSHA1InWant`` does; everything else reaches the real git."""

    def before(self, args: Sequence[str], env: dict[str, str]) -> GitResult | None:
        if "fetch" in args and re.fullmatch(r"[0-9a-f]{40}", args[-1]):
            return GitResult(128, "", f"fatal: remote error: upload-pack: not our ref {args[-1]}\n")
        return None


@pytest.mark.parametrize(
    ("branch", "label"), [(None, "c3"), ("main", "c3")], ids=["commit", "commit-on-branch"]
)
def test_a_pinned_commit_falls_back_to_history_when_the_server_refuses_a_sha(
    shared_origin: Origin, tmp_path: Path, branch: str | None, label: str
) -> None:
    runner = ShaRefusingRunner()
    sha = shared_origin.commits[label]
    artifact = fetch(
        shared_origin.file_url, Ref(commit=sha, branch=branch), cache_dir=tmp_path, runner=runner
    )
    assert artifact.commit == sha
    assert runner.commands() == ["fetch", "fetch"]  # refused by sha, then the history


def test_a_branch_that_moves_between_ls_remote_and_fetch_yields_the_newer_commit(
    origin: Origin, tmp_path: Path
) -> None:
    class PushInBetween(CountingRunner):
        def before(self, args: Sequence[str], env: dict[str, str]) -> GitResult | None:
            if "fetch" in args:
                origin.work.write({"deploy/late.yaml": "kind: ConfigMap\n"})
                self.late = origin.work.commit("pushed during the fetch")
                origin.work.push("main")
            return None

    runner = PushInBetween()
    artifact = fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path, runner=runner)
    assert artifact.commit == runner.late
    assert artifact.revision == f"main@sha1:{runner.late}"
    assert (artifact.path / "deploy" / "late.yaml").exists()


def test_concurrent_fetches_of_one_remote_share_the_cache_safely(
    shared_origin: Origin, tmp_path: Path
) -> None:
    labels = ["c1", "c2", "c3", "c5", "c1", "c5"]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int, label: str) -> None:
        try:
            ref = Ref(commit=shared_origin.commits[label])
            results[i] = fetch(shared_origin.file_url, ref, cache_dir=tmp_path).commit
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, lab)) for i, lab in enumerate(labels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [results[i] for i in range(len(labels))] == [shared_origin.commits[x] for x in labels]


def test_a_bearer_token_never_reaches_argv_or_env(runner: CountingRunner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "bearer-canary-0c9d8e7f"
    with pytest.raises(SourceError) as info:
        check(f"https://127.0.0.1:{port}/r.git", auth=HttpAuth(bearer_token=token), runner=runner)
    assert token not in str(info.value)
    ((args, env),) = runner.calls
    assert token not in " ".join(args)
    assert all(token not in value for value in env.values())
