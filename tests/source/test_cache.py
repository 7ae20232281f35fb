"""The cache: cheap polls, pinned commits without network, and following a force-push."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from sealed_gitops.source import GitResult, HttpAuth, Ref, SshAuth, check, fetch
from sealed_gitops.testing.gitserver import HttpGitServer, SshServer
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER, CountingRunner, Origin


def test_check_costs_one_ls_remote_and_no_download(
    shared_origin: Origin, runner: CountingRunner
) -> None:
    assert (
        check(shared_origin.file_url, Ref(branch="dev"), runner=runner)
        == (shared_origin.commits["c6"])
    )
    assert runner.commands() == ["ls-remote"]


def test_a_pinned_commit_already_cached_costs_no_network(
    shared_origin: Origin, tmp_path: Path, runner: CountingRunner
) -> None:
    ref = Ref(commit=shared_origin.commits["c3"])
    first = fetch(shared_origin.file_url, ref, cache_dir=tmp_path, runner=runner)
    assert runner.commands() == ["fetch"]
    runner.calls.clear()
    assert fetch(shared_origin.file_url, ref, cache_dir=tmp_path, runner=runner) == first
    assert runner.calls == []


def test_a_new_commit_is_fetched_and_checked_out(
    origin: Origin, tmp_path: Path, runner: CountingRunner
) -> None:
    before = fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path)
    origin.work.write({"deploy/new.yaml": "kind: ConfigMap\n"})
    new = origin.work.commit("add new.yaml")
    origin.work.push("main")
    assert check(origin.file_url, Ref(branch="main")) == new
    after = fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path, runner=runner)
    assert runner.commands() == ["ls-remote", "fetch"]
    assert after.commit == new
    assert after.path != before.path
    assert (after.path / "deploy" / "new.yaml").exists()
    assert not (before.path / "deploy" / "new.yaml").exists()  # the old checkout is untouched


def test_a_force_pushed_branch_is_followed_with_no_stale_commit(
    origin: Origin, tmp_path: Path
) -> None:
    first = fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path)
    assert first.commit == origin.commits["c5"]
    # Rewrite history: main goes back to c2 and gets a different commit on top.
    origin.work.reset_hard(origin.commits["c2"])
    origin.work.write({"deploy/app.yaml": "kind: ConfigMap\nmetadata: {name: rewritten}\n"})
    rewritten = origin.work.commit("rewritten history")
    origin.work.push("main", force=True)
    again = fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path)
    assert again.commit == rewritten
    assert again.revision == f"main@sha1:{rewritten}"
    assert "rewritten" in (again.path / "deploy" / "app.yaml").read_text()
    # Force-pushing back to an old commit is followed too (it is still in the cache: no fetch).
    origin.work.reset_hard(origin.commits["c5"])
    origin.work.push("main", force=True)
    assert fetch(origin.file_url, Ref(branch="main"), cache_dir=tmp_path).commit == first.commit


def test_old_worktrees_are_pruned_but_recent_ones_kept(origin: Origin, tmp_path: Path) -> None:
    shas = [origin.commits[label] for label in ("c1", "c2", "c3", "c4", "c5", "c6")]
    paths = [fetch(origin.file_url, Ref(commit=sha), cache_dir=tmp_path).path for sha in shas]
    kept = [p for p in paths if p.exists()]
    assert kept == paths[-4:]


def _secrets_absent(runner: CountingRunner, *secrets: bytes | str) -> None:
    for args, env in runner.calls:
        joined = " ".join(args)
        for secret in secrets:
            text = secret.decode() if isinstance(secret, bytes) else secret
            for line in text.strip().splitlines():
                assert line not in joined, "secret in argv"
                assert all(line not in value for value in env.values()), "secret in env"


def test_https_credentials_never_reach_argv_env_or_the_url(
    https_server: HttpGitServer, shared_origin: Origin, tmp_path: Path, runner: CountingRunner
) -> None:
    auth = HttpAuth(username=HTTP_USER, password=HTTP_PASSWORD, ca_bundle=https_server.ca_pem)
    artifact = fetch(
        https_server.url(shared_origin.name), auth=auth, cache_dir=tmp_path, runner=runner
    )
    _secrets_absent(runner, HTTP_PASSWORD)
    assert HTTP_PASSWORD not in repr(artifact)
    assert HTTP_PASSWORD not in repr(auth)


def test_credentials_in_the_url_are_moved_out_of_it(
    https_server: HttpGitServer, shared_origin: Origin, tmp_path: Path, runner: CountingRunner
) -> None:
    plain = https_server.url(shared_origin.name)
    with_creds = plain.replace("https://", f"https://{HTTP_USER}:{HTTP_PASSWORD}@")
    # The CA still has to come from auth; the URL's credentials win over none given.
    artifact = fetch(
        with_creds,
        auth=HttpAuth(ca_bundle=https_server.ca_pem),
        cache_dir=tmp_path,
        runner=runner,
    )
    assert artifact.url == plain
    _secrets_absent(runner, HTTP_PASSWORD)


def test_ssh_key_lives_in_a_private_file_only_during_the_call(
    sshd: SshServer, shared_origin: Origin, tmp_path: Path, runner: CountingRunner
) -> None:
    auth = SshAuth(known_hosts=sshd.known_hosts, private_key=sshd.deploy_key)

    class Inspecting(CountingRunner):
        modes: ClassVar[list[int]] = []
        dirs: ClassVar[list[str]] = []

        def before(self, args: Sequence[str], env: dict[str, str]) -> GitResult | None:
            key = env["GIT_SSH_COMMAND"].split(" -i ")[1].split()[0]
            self.modes.append(os.stat(key).st_mode & 0o777)
            self.modes.append(os.stat(os.path.dirname(key)).st_mode & 0o777)
            self.dirs.append(os.path.dirname(key))
            return None

    inspecting = Inspecting()
    fetch(sshd.url(shared_origin.name), auth=auth, cache_dir=tmp_path, runner=inspecting)
    assert set(inspecting.modes) == {0o600, 0o700}
    _secrets_absent(inspecting, sshd.deploy_key)
    assert inspecting.dirs
    assert not any(os.path.exists(d) for d in inspecting.dirs)  # removed after the call


@pytest.mark.parametrize("transport", ["file", "https"])
def test_the_artifact_url_is_credential_free(
    request: pytest.FixtureRequest, shared_origin: Origin, tmp_path: Path, transport: str
) -> None:
    if transport == "file":
        url, auth = shared_origin.file_url, None
    else:
        server: HttpGitServer = request.getfixturevalue("https_server")
        url = server.url(shared_origin.name).replace("https://", "https://tok-9a8b7c6d@")
        auth = HttpAuth(username=HTTP_USER, password=HTTP_PASSWORD, ca_bundle=server.ca_pem)
    artifact = fetch(url, auth=auth, cache_dir=tmp_path)
    assert "@" not in artifact.url
