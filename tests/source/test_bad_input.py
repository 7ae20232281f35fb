"""Bad input fails fast with a clear SourceError/ConfigError, and never leaks a credential."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.errors import ConfigError, SourceError
from sealed_gitops.source import HttpAuth, Ref, SshAuth, check, fetch
from sealed_gitops.testing.gitserver import HttpGitServer, SshServer
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER, CountingRunner, Origin


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("scheme", "auth"),
    [
        ("git", None),
        ("https", HttpAuth(username="u", password="p-unreachable-1234")),
        ("ssh", SshAuth(known_hosts=b"[127.0.0.1]:1 ssh-ed25519 AAAA\n")),
    ],
)
def test_an_unreachable_remote_is_a_source_error(
    closed_port: int, tmp_path: Path, scheme: str, auth: HttpAuth | SshAuth | None
) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port}/repo.git"
    with pytest.raises(SourceError, match="cannot connect"):
        fetch(url, Ref(branch="main"), auth, cache_dir=tmp_path, timeout=10)


def test_a_remote_that_never_answers_times_out(silent_port: int, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"timed out after 1s"):
        fetch(f"git://127.0.0.1:{silent_port}/repo.git", cache_dir=tmp_path, timeout=1)


def test_a_missing_repository_is_a_source_error(daemon: object, tmp_path: Path) -> None:
    from sealed_gitops.testing.gitserver import GitDaemon

    assert isinstance(daemon, GitDaemon)
    with pytest.raises(SourceError, match="failed"):
        fetch(daemon.url("no-such-repo.git"), cache_dir=tmp_path, timeout=10)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (Ref(branch="nope"), "branch 'nope' not found"),
        (Ref(tag="v9.9.9"), "tag 'v9.9.9' not found"),
        (Ref(semver=">=5.0.0"), "no tag matches semver range '>=5.0.0'"),
        (Ref(commit="0123456789abcdef0123456789abcdef01234567"), "not on the remote"),
        (
            Ref(commit="0123456789abcdef0123456789abcdef01234567", branch="main"),
            "not on the remote",
        ),
    ],
)
def test_a_wrong_ref_is_a_source_error(
    shared_origin: Origin, tmp_path: Path, ref: Ref, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        fetch(shared_origin.file_url, ref, cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ext::sh -c touch% /tmp/pwned", "unsupported remote"),
        ("git@github.com:org/repo.git", "unsupported remote"),
        ("ftp://example.com/repo.git", "unsupported URL scheme 'ftp'"),
        ("fd::17", "unsupported remote"),
        ("file://otherhost/srv/repo.git", "must not name a host"),
        ("https:///repo.git", "has no host"),
    ],
)
def test_an_unsupported_url_is_refused_before_any_process(
    url: str, message: str, tmp_path: Path, runner: CountingRunner
) -> None:
    with pytest.raises(ConfigError, match=message):
        fetch(url, cache_dir=tmp_path, runner=runner)
    assert runner.calls == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ({"branch": "-upload-pack=evil"}, "invalid branch name"),
        ({"branch": "a..b"}, "invalid branch name"),
        ({"tag": "v1", "semver": "^1"}, "both tag and semver"),
        ({"commit": "abc123"}, "full 40-character sha1"),
        ({"semver": ">=x.y.z.w"}, "is not a version"),
    ],
)
def test_a_malformed_ref_is_a_config_error(text: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Ref(**text)


def test_ssh_with_an_unknown_host_key_is_refused(
    sshd: SshServer, shared_origin: Origin, tmp_path: Path
) -> None:
    stranger = (
        b"[127.0.0.1]:%d ssh-ed25519 "
        b"AAAAC3NzaC1lZDI1NTE5AAAAIBn6VdIl3hFYUgJ4h5yFbQ0Xb2lH0W0y5y0bYkYJ8n2M\n" % sshd.port
    )
    auth = SshAuth(known_hosts=stranger, private_key=sshd.deploy_key)
    with pytest.raises(SourceError, match="host key"):
        fetch(sshd.url(shared_origin.name), auth=auth, cache_dir=tmp_path, timeout=15)


def test_ssh_without_known_hosts_is_refused(sshd: SshServer, shared_origin: Origin) -> None:
    with pytest.raises(ConfigError, match="known_hosts"):
        check(
            sshd.url(shared_origin.name), auth=SshAuth(known_hosts=b"", private_key=sshd.deploy_key)
        )
    with pytest.raises(ConfigError, match="known_hosts"):
        check(sshd.url(shared_origin.name))


def test_ssh_with_a_key_the_server_does_not_accept_is_refused(
    sshd: SshServer, shared_origin: Origin
) -> None:
    auth = SshAuth(known_hosts=sshd.known_hosts, private_key=sshd.other_key)
    with pytest.raises(SourceError, match="authentication refused"):
        check(sshd.url(shared_origin.name), auth=auth, timeout=15)


@pytest.mark.parametrize(
    "auth",
    [None, HttpAuth(username=HTTP_USER, password="wrong-password-5d1e")],
    ids=["no-credentials", "wrong-password"],
)
def test_https_without_valid_credentials_is_refused(
    https_server: HttpGitServer, shared_origin: Origin, auth: HttpAuth | None
) -> None:
    full = auth or HttpAuth()
    full = HttpAuth(username=full.username, password=full.password, ca_bundle=https_server.ca_pem)
    with pytest.raises(SourceError) as info:
        check(https_server.url(shared_origin.name), auth=full, timeout=15)
    assert "wrong-password-5d1e" not in str(info.value)


def test_https_with_an_untrusted_certificate_is_refused(
    https_server: HttpGitServer, shared_origin: Origin
) -> None:
    auth = HttpAuth(username=HTTP_USER, password=HTTP_PASSWORD)  # no ca_bundle
    with pytest.raises(SourceError, match="TLS certificate not trusted"):
        check(https_server.url(shared_origin.name), auth=auth, timeout=15)


def test_credentials_are_never_sent_over_plain_http(runner: CountingRunner) -> None:
    with pytest.raises(ConfigError, match="plain http"):
        check("http://127.0.0.1:1/r.git", auth=HttpAuth(token="tok-abcdef-123"), runner=runner)
    assert runner.calls == []
