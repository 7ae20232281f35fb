"""Fetching every kind of ref over every transport, against real servers on loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git
import pytest

from sealed_gitops.source import Auth, HttpAuth, Ref, SshAuth, fetch
from sealed_gitops.testing.gitserver import GitDaemon, HttpGitServer, SshServer
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER, CountingRunner, Origin

TRANSPORTS = ["file", "git", "ssh", "https"]


def remote_for(
    request: pytest.FixtureRequest, transport: str, origin: Origin
) -> tuple[str, Auth | None]:
    """The URL (and auth) of ``origin`` as served over ``transport``."""
    if transport == "file":
        return origin.file_url, None
    if transport == "git":
        daemon: GitDaemon = request.getfixturevalue("daemon")
        return daemon.url(origin.name), None
    if transport == "ssh":
        sshd: SshServer = request.getfixturevalue("sshd")
        return sshd.url(origin.name), SshAuth(
            known_hosts=sshd.known_hosts, private_key=sshd.deploy_key
        )
    server: HttpGitServer = request.getfixturevalue("https_server")
    return server.url(origin.name), HttpAuth(
        username=HTTP_USER, password=HTTP_PASSWORD, ca_bundle=server.ca_pem
    )


# (ref, expected commit label, expected revision name or None for a bare commit)
Case = tuple[Callable[[Origin], Ref], str, str | None]
REFS = [
    pytest.param((lambda o: Ref(), "c5", "main"), id="remote-head"),
    pytest.param((lambda o: Ref(branch="main"), "c5", "main"), id="branch-main"),
    pytest.param((lambda o: Ref(branch="dev"), "c6", "dev"), id="branch-dev"),
    pytest.param((lambda o: Ref(tag="v1.0.0"), "c1", "v1.0.0"), id="tag"),
    # an annotated tag is peeled to its commit
    pytest.param((lambda o: Ref(tag="v1.2.3"), "c2", "v1.2.3"), id="annotated-tag"),
    pytest.param((lambda o: Ref(semver=">=1.0.0 <2.0.0"), "c3", "v1.3.0"), id="semver-range"),
    pytest.param((lambda o: Ref(semver="~1.2"), "c2", "v1.2.3"), id="semver-tilde"),
    pytest.param((lambda o: Ref(semver="^1"), "c3", "v1.3.0"), id="semver-caret"),
    pytest.param((lambda o: Ref(semver=">=2.0.0-0"), "c4", "v2.0.0-rc.1"), id="semver-pre"),
    pytest.param((lambda o: Ref(commit=o.commits["c2"]), "c2", None), id="commit"),
    pytest.param(
        (lambda o: Ref(commit=o.commits["c6"], branch="dev"), "c6", "dev"), id="commit-on-branch"
    ),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", REFS)
def test_fetch_resolves_every_ref_kind_over_every_transport(
    request: pytest.FixtureRequest,
    shared_origin: Origin,
    tmp_path: Path,
    transport: str,
    case: Case,
) -> None:
    make_ref, label, name = case
    url, auth = remote_for(request, transport, shared_origin)
    artifact = fetch(url, make_ref(shared_origin), auth, cache_dir=tmp_path, timeout=30)
    sha = shared_origin.commits[label]
    assert artifact.commit == sha
    assert artifact.revision == (f"{name}@sha1:{sha}" if name else f"sha1:{sha}")
    assert (artifact.path / "deploy" / "app.yaml").read_text().endswith(f"{{name: {label}}}\n")
    assert artifact.author.email == "dev1@example.invalid"
    assert artifact.message == f"commit {label}\n"
    assert artifact.signer is None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fetch_is_shallow(
    request: pytest.FixtureRequest, shared_origin: Origin, tmp_path: Path, transport: str
) -> None:
    url, auth = remote_for(request, transport, shared_origin)
    artifact = fetch(url, Ref(branch="main"), auth, cache_dir=tmp_path, timeout=30)
    repo = git.Repo(artifact.path)
    assert [c.hexsha for c in repo.iter_commits()] == [shared_origin.commits["c5"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_second_fetch_with_no_new_commit_costs_one_ls_remote(
    request: pytest.FixtureRequest,
    shared_origin: Origin,
    tmp_path: Path,
    transport: str,
    runner: CountingRunner,
) -> None:
    url, auth = remote_for(request, transport, shared_origin)
    first = fetch(url, Ref(branch="main"), auth, cache_dir=tmp_path, runner=runner)
    assert runner.commands() == ["ls-remote", "fetch"]
    runner.calls.clear()
    second = fetch(url, Ref(branch="main"), auth, cache_dir=tmp_path, runner=runner)
    assert runner.commands() == ["ls-remote"]
    assert second == first
