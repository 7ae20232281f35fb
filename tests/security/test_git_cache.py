"""Issue 11, finding 3: the git cache is shared across tenants, and a pinned commit skips auth.

The attack: team-a's Repository fetches a private repository with its credentials; team-b's
Repository names the same URL with no credentials (or wrong ones) and ``ref.commit`` set to
team-a's private commit. Before the fix the cache, keyed by the URL alone, answered team-b from
team-a's objects without asking the server. After it, a cached commit is only served to a caller
whose own credentials fetched it: every case below must fail with the server's refusal and hand
team-b nothing.

Real servers on loopback (smart HTTPS with basic auth through ``git http-backend``, sshd with a
deploy key), a real cache directory, and the project's own runner seam to count network calls.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.errors import SourceError
from sealed_gitops.source import HttpAuth, Ref, SshAuth, fetch
from sealed_gitops.testing.gitserver import GitDaemon, HttpGitServer, SshServer
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER, CountingRunner, Origin, make_origin

CANARY = "team-a-private-canary-3d9e1b"


@pytest.fixture(scope="module")
def git_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sec-git-base")


@pytest.fixture
def private_origin(git_root: Path, tmp_path: Path) -> Origin:
    """team-a's private repository: the usual history plus one commit carrying the canary."""
    origin = make_origin(git_root, tmp_path / "work")
    origin.work.write({"deploy/secret.yaml": f"kind: ConfigMap\ndata: {{v: {CANARY}}}\n"})
    origin.commits["private"] = origin.work.commit("team-a private commit")
    origin.work.push("HEAD:refs/heads/private")
    return origin


@pytest.fixture(scope="module")
def https(git_root: Path) -> Iterator[HttpGitServer]:
    server = HttpGitServer(git_root, username=HTTP_USER, password=HTTP_PASSWORD, tls=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sshd(git_root: Path) -> Iterator[SshServer]:
    if not SshServer.available():
        pytest.skip("openssh-server is not installed (the Makefile installs it)")
    server = SshServer(git_root)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        pytest.skip(f"sshd could not start here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def daemon(git_root: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(git_root).start()
    try:
        yield server
    finally:
        server.stop()


def _team_a_https(server: HttpGitServer) -> HttpAuth:
    return HttpAuth(username=HTTP_USER, password=HTTP_PASSWORD, ca_bundle=server.ca_pem)


def _team_b_https(server: HttpGitServer, kind: str) -> HttpAuth:
    """team-b's auth: the CA only (so TLS works) plus no, wrong, or only-a-username credentials."""
    if kind == "none":
        return HttpAuth(ca_bundle=server.ca_pem)
    if kind == "wrong-password":
        return HttpAuth(username=HTTP_USER, password="guessed", ca_bundle=server.ca_pem)
    return HttpAuth(token="stolen-looking-token", ca_bundle=server.ca_pem)


def _canary_anywhere(root: Path) -> bool:
    return any(CANARY in p.read_text(errors="replace") for p in root.rglob("*.yaml") if p.is_file())


@pytest.mark.parametrize("team_b", ["none", "wrong-password", "other-token"])
@pytest.mark.parametrize("pin_branch", [False, True], ids=["bare-commit", "commit-on-branch"])
def test_a_pinned_commit_is_not_served_to_a_tenant_without_its_own_access_over_https(
    private_origin: Origin, https: HttpGitServer, tmp_path: Path, team_b: str, pin_branch: bool
) -> None:
    cache = tmp_path / "shared-cache"
    url = https.url(private_origin.name)
    sha = private_origin.commits["private"]
    ref = Ref(commit=sha, branch="private" if pin_branch else None)

    mine = fetch(url, ref, _team_a_https(https), cache_dir=cache)
    assert CANARY in (mine.path / "deploy/secret.yaml").read_text()

    runner = CountingRunner()
    with pytest.raises(SourceError) as refused:
        fetch(url, ref, _team_b_https(https, team_b), cache_dir=cache, runner=runner)
    assert "authentication" in str(refused.value) or "credentials" in str(refused.value)
    assert runner.calls, "team-b was answered without asking the server"
    # and team-a, with its own credentials, is still served from the cache without a download
    again = CountingRunner()
    fetch(url, ref, _team_a_https(https), cache_dir=cache, runner=again)
    assert "fetch" not in again.commands()


def test_a_pinned_commit_is_not_served_to_a_tenant_with_another_deploy_key_over_ssh(
    private_origin: Origin, sshd: SshServer, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"
    url = sshd.url(private_origin.name)
    ref = Ref(commit=private_origin.commits["private"])
    team_a = SshAuth(known_hosts=sshd.known_hosts, private_key=sshd.deploy_key)
    assert (
        CANARY in (fetch(url, ref, team_a, cache_dir=cache).path / "deploy/secret.yaml").read_text()
    )

    for team_b in (
        SshAuth(known_hosts=sshd.known_hosts, private_key=sshd.other_key),
        SshAuth(known_hosts=sshd.known_hosts),
    ):
        with pytest.raises(SourceError, match="authentication refused"):
            fetch(url, ref, team_b, cache_dir=cache)


def test_credentials_written_in_the_url_count_as_the_callers_own(
    private_origin: Origin, https: HttpGitServer, tmp_path: Path
) -> None:
    """``https://user:pass@host/...`` is the same access as a Secret with that pair, and a URL
    with a wrong pair is not."""
    cache = tmp_path / "shared-cache"
    ref = Ref(commit=private_origin.commits["private"])
    ca = HttpAuth(ca_bundle=https.ca_pem)
    good = https.url(private_origin.name).replace("://", f"://{HTTP_USER}:{HTTP_PASSWORD}@")
    fetch(good, ref, ca, cache_dir=cache)
    runner = CountingRunner()
    fetch(https.url(private_origin.name), ref, _team_a_https(https), cache_dir=cache, runner=runner)
    assert "fetch" not in runner.commands()  # same credentials, same cache
    bad = https.url(private_origin.name).replace("://", f"://{HTTP_USER}:nope@")
    with pytest.raises(SourceError):
        fetch(bad, ref, ca, cache_dir=cache)


def test_anonymous_callers_of_a_public_repository_still_share_the_cache(
    private_origin: Origin, daemon: GitDaemon, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"
    url = daemon.url(private_origin.name)
    ref = Ref(commit=private_origin.commits["c2"])
    fetch(url, ref, None, cache_dir=cache)
    runner = CountingRunner()
    artifact = fetch(url, ref, None, cache_dir=cache, runner=runner)
    assert artifact.commit == private_origin.commits["c2"]
    assert runner.calls == []  # a pinned commit already held: no network at all


def test_rotated_credentials_fetch_again_and_the_old_ones_keep_their_own_entry(
    private_origin: Origin, https: HttpGitServer, tmp_path: Path
) -> None:
    """After a rotation the new credentials prove their access with a download of their own."""
    cache = tmp_path / "shared-cache"
    url = https.url(private_origin.name)
    ref = Ref(commit=private_origin.commits["private"])
    fetch(url, ref, _team_a_https(https), cache_dir=cache)
    rotated = HttpAuth(username=HTTP_USER, token=HTTP_PASSWORD, ca_bundle=https.ca_pem)
    runner = CountingRunner()
    fetch(url, ref, rotated, cache_dir=cache, runner=runner)
    # the same (user, password) pair, whatever field carried it: one identity, no download
    assert "fetch" not in runner.commands()
    bearer = HttpAuth(bearer_token="another-identity", ca_bundle=https.ca_pem)
    with pytest.raises(SourceError):
        fetch(url, ref, bearer, cache_dir=cache)


def test_no_credential_material_and_no_hostile_path_reaches_the_cache_directory(
    private_origin: Origin, https: HttpGitServer, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"
    hostile = https.url(f"../{private_origin.name}/../{private_origin.name}")
    ref = Ref(commit=private_origin.commits["private"])
    fetch(hostile, ref, _team_a_https(https), cache_dir=cache)
    fetch(https.url(private_origin.name), ref, _team_a_https(https), cache_dir=cache)

    forbidden = {
        HTTP_PASSWORD,
        hashlib.sha256(HTTP_PASSWORD.encode()).hexdigest()[:16],
        hashlib.sha256(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).hexdigest()[:16],
    }
    for path in cache.rglob("*"):
        assert not any(f in str(path) for f in forbidden), path
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert HTTP_PASSWORD.encode() not in data, path
    # every entry of the cache root is a fixed-shape name of our own, whatever the URL said
    for entry in os.listdir(cache):
        assert entry.startswith(".") or all(c in "0123456789abcdef" for c in entry), entry
    assert not (tmp_path / private_origin.name).exists()
    assert _canary_anywhere(cache)  # the fetches did land (in the cache, nowhere else)
