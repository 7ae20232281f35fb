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

import base64
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.errors import SourceError
from sealed_gitops.source import HttpAuth, Ref, SshAuth, fetch
from sealed_gitops.testing.gitserver import GitDaemon, HttpGitServer, SshServer
from tests.operator.conftest import (
    Kube,
    Setup,
    is_ready,
    ready,
    wait_for,
)
from tests.source import conftest as source_fixtures
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER, CountingRunner, Origin, make_origin

# The source tests' Git servers (HTTPS with basic auth, sshd with a deploy key, git daemon) over
# their session root, made visible to pytest here; ``https`` is their ``https_server``.
git_base = source_fixtures.git_base
https = source_fixtures.https_server
sshd = source_fixtures.sshd
daemon = source_fixtures.daemon

CANARY = "team-a-private-canary-3d9e1b"


@pytest.fixture
def private_origin(git_base: Path, tmp_path: Path) -> Origin:
    """team-a's private repository: the usual history plus one commit carrying the canary."""
    origin = make_origin(git_base, tmp_path / "work")
    origin.work.write({"deploy/secret.yaml": f"kind: ConfigMap\ndata: {{v: {CANARY}}}\n"})
    origin.commits["private"] = origin.work.commit("team-a private commit")
    origin.work.push("HEAD:refs/heads/private")
    return origin


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


def _repository(kube: Kube, ns: str, spec: dict[str, Any]) -> None:
    kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "private", "namespace": ns},
            "spec": {"interval": "1s", **spec},
        }
    )


def _secret(kube: Kube, ns: str, name: str, values: dict[str, bytes]) -> None:
    data = {k: base64.b64encode(v).decode() for k, v in values.items()}
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "data": data,
        }
    )


@pytest.mark.e2e
@pytest.mark.parametrize("team_b_auth", ["no-secret-ref", "wrong-password"])
def test_operator_does_not_hand_team_a_private_commit_to_team_b(
    setup: Setup, operator_factory: Any, tmp_path: Path, team_b_auth: str
) -> None:
    """End to end: one operator (one cache) watching team-a and team-b; team-b's Repository
    names team-a's private URL and commit, and its Sync would apply whatever it is given."""
    team_a, kube = setup.namespace, setup.kube
    team_b = f"sg-b-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team_b}})
    setup.push({"deploy/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\n"
                f"data:\n  value: {CANARY}\n"})  # fmt: skip
    sha = setup.repo.head()
    server = HttpGitServer(
        setup.remote.parent, username=HTTP_USER, password=HTTP_PASSWORD, tls=True
    ).start()
    try:
        url = server.url(setup.remote.name)
        _secret(kube, team_a, "git-auth", {
            "username": HTTP_USER.encode(), "password": HTTP_PASSWORD.encode(),
            "caFile": server.ca_pem,
        })  # fmt: skip
        _repository(kube, team_a, {"url": url, "ref": {"branch": "main"},
                                   "secretRef": {"name": "git-auth"}})  # fmt: skip
        thread = operator_factory(team_a, watch=[team_a, team_b])
        assert thread.running
        wait_for(
            lambda: is_ready(kube.get(_repo_path(team_a)) or {}),
            what="team-a's Repository fetched its private commit",
        )

        b_spec: dict[str, Any] = {"url": url, "ref": {"commit": sha}}
        b_secret = {"caFile": server.ca_pem}  # TLS trust only: no credentials
        if team_b_auth == "wrong-password":
            b_secret |= {"username": HTTP_USER.encode(), "password": b"guessed"}
        _secret(kube, team_b, "git-auth", b_secret)
        b_spec["secretRef"] = {"name": "git-auth"}
        _repository(kube, team_b, b_spec)
        kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "steal", "namespace": team_b},
                "spec": {"repositoryRef": {"name": "private"}, "path": "./deploy",
                         "interval": "1s", "retryInterval": "1s", "prune": False},
            }
        )  # fmt: skip
        refused = wait_for(
            lambda: ready(kube.get(_repo_path(team_b)) or {}),
            what="team-b's Repository reconciled",
        )
        # before the fix: Ready True, an artifact, and the canary ConfigMap in team-b
        assert refused["status"] == "False", (kube.get(_repo_path(team_b)) or {}).get("status")
        assert "authentication" in refused["message"] or "credentials" in refused["message"]
        time.sleep(3.0)  # several retries of team-b's Repository and Sync
        b_repo = kube.get(_repo_path(team_b)) or {}
        assert not (b_repo.get("status") or {}).get("artifact"), b_repo.get("status")
        assert kube.get(f"/api/v1/namespaces/{team_b}/configmaps/leak") is None
    finally:
        server.stop()
        kube.delete(f"/api/v1/namespaces/{team_b}")


def _repo_path(ns: str) -> str:
    return f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/repositories/private"


def test_entries_left_by_rotated_credentials_or_older_versions_are_pruned_when_stale(
    private_origin: Origin, https: HttpGitServer, daemon: GitDaemon, tmp_path: Path
) -> None:
    """Keying by credentials leaves an entry behind at each rotation, and the URL-only entries
    of older versions (which hold objects fetched with anyone's credentials) stay on disk: an
    entry unused for STALE_AFTER goes at the next download; a recent one stays."""
    cache = tmp_path / "shared-cache"
    url = https.url(private_origin.name)
    ref = Ref(commit=private_origin.commits["private"])
    fetch(url, ref, _team_a_https(https), cache_dir=cache)
    (rotated_away,) = [p for p in cache.iterdir() if p.is_dir()]
    legacy = cache / hashlib.sha256(url.encode()).hexdigest()[:24]  # the old URL-only name
    legacy.mkdir()
    (legacy / "lock").touch()
    old = time.time() - 15 * 24 * 3600
    for entry in (rotated_away, legacy):
        os.utime(entry / "lock", (old, old))
    recent = fetch(daemon.url(private_origin.name), Ref(commit=private_origin.commits["c1"]), None,
                   cache_dir=cache)  # fmt: skip
    assert not rotated_away.exists() and not legacy.exists()
    assert recent.path.exists()
    # a recently used entry (the same credentials again) survives the next download
    fetch(url, ref, _team_a_https(https), cache_dir=cache)
    assert rotated_away.exists()
    fetch(daemon.url(private_origin.name), Ref(commit=private_origin.commits["c3"]), None,
          cache_dir=cache)  # fmt: skip
    assert rotated_away.exists() and recent.path.exists()
