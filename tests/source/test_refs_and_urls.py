"""Pure parts of the source layer: ls-remote parsing, ref resolution, revision strings, URLs."""

from __future__ import annotations

import pytest

from sealed_gitops import redact
from sealed_gitops.errors import ConfigError, SourceError
from sealed_gitops.source import HttpAuth, Ref, SshAuth, auth_from_secret_data, format_revision
from sealed_gitops.source.auth import parse_url, safe_url
from sealed_gitops.source.refs import parse_ls_remote, resolve
from sealed_gitops.source.transport import explain

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
LS_REMOTE = (
    f"ref: refs/heads/trunk\tHEAD\n{A}\tHEAD\n{A}\trefs/heads/trunk\n{B}\trefs/heads/dev\n"
    f"{C}\trefs/tags/v1.0.0\n{D}\trefs/tags/v1.0.0^{{}}\n{B}\trefs/tags/v1.1.0\n"
)


@pytest.mark.parametrize(
    ("ref", "commit", "revision"),
    [
        (Ref(), A, f"trunk@sha1:{A}"),
        (Ref(branch="dev"), B, f"dev@sha1:{B}"),
        (Ref(tag="v1.0.0"), D, f"v1.0.0@sha1:{D}"),  # peeled
        (Ref(semver="^1"), B, f"v1.1.0@sha1:{B}"),
        (Ref(commit=C), C, f"sha1:{C}"),
        (Ref(commit=C, branch="dev"), C, f"dev@sha1:{C}"),
        (Ref(commit=C, semver="^1", tag=None), C, f"sha1:{C}"),  # commit wins
    ],
)
def test_resolve_follows_flux_precedence_and_revision_format(
    ref: Ref, commit: str, revision: str
) -> None:
    resolution = resolve(ref, parse_ls_remote(LS_REMOTE), url="file:///r")
    assert (resolution.commit, resolution.revision) == (commit, revision)


def test_resolve_names_what_is_missing() -> None:
    with pytest.raises(SourceError, match="branch 'x' not found"):
        resolve(Ref(branch="x"), parse_ls_remote(LS_REMOTE), url="file:///r")
    with pytest.raises(SourceError, match="no HEAD"):
        resolve(Ref(), parse_ls_remote(""), url="file:///r")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("main", Ref(branch="main")),
        ("branch:release/1.x", Ref(branch="release/1.x")),
        ("tag:v1.2.3", Ref(tag="v1.2.3")),
        ("semver:>=1.0.0 <2.0.0", Ref(semver=">=1.0.0 <2.0.0")),
        (f"commit:{A}", Ref(commit=A)),
        (A, Ref(commit=A)),
    ],
)
def test_ref_parse_reads_the_cli_form(text: str, expected: Ref) -> None:
    assert Ref.parse(text) == expected


def test_ref_from_spec_reads_the_cr_form() -> None:
    assert Ref.from_spec({"branch": "main"}) == Ref(branch="main")
    assert Ref.from_spec(None) == Ref()
    with pytest.raises(ConfigError, match="unknown ref field"):
        Ref.from_spec({"name": "x"})


def test_format_revision() -> None:
    assert format_revision("main", A) == f"main@sha1:{A}"
    assert format_revision(None, A) == f"sha1:{A}"


@pytest.mark.parametrize(
    ("url", "clean", "user", "secret"),
    [
        ("https://bob:pa55-word-x@git.example/r.git", "https://git.example/r.git", "bob",
         "pa55-word-x"),
        ("https://tok-123456@git.example/r.git", "https://git.example/r.git", "x-access-token",
         "tok-123456"),
        ("ssh://git@git.example:2222/r.git", "ssh://git@git.example:2222/r.git", None, None),
        ("git://git.example/r.git", "git://git.example/r.git", None, None),
        ("file:///srv/r.git", "file:///srv/r.git", None, None),
        ("HTTPS://git.example/r.git", "https://git.example/r.git", None, None),
    ],
)  # fmt: skip
def test_parse_url_moves_credentials_out(
    url: str, clean: str, user: str | None, secret: str | None
) -> None:
    remote = parse_url(url)
    assert remote.url == clean
    if secret is None:
        assert remote.url_auth is None
    else:
        assert remote.url_auth is not None
        assert remote.url_auth.basic() == (user, secret)
        assert redact.redact(f"x {secret} y") == f"x {redact.MASK} y"
        assert secret not in safe_url(url)


def test_auth_from_secret_data_reads_flux_entry_names() -> None:
    ssh = auth_from_secret_data(
        {"identity": b"-----BEGIN OPENSSH PRIVATE KEY-----\n", "known_hosts": b"h k v"},
        url="ssh://git@h/r",
    )
    assert isinstance(ssh, SshAuth)
    assert ssh.known_hosts == b"h k v"
    basic = auth_from_secret_data({"username": b"u", "password": b"p-zz-1"}, url="https://h/r")
    assert isinstance(basic, HttpAuth)
    assert basic.basic() == ("u", "p-zz-1")
    bearer = auth_from_secret_data({"bearerToken": b"bt-1234"}, url="https://h/r")
    assert isinstance(bearer, HttpAuth)
    assert bearer.bearer_token == "bt-1234"
    assert auth_from_secret_data({}, url="git://h/r") is None
    with pytest.raises(ConfigError, match="known_hosts"):
        auth_from_secret_data({"identity": b"-----BEGIN OPENSSH PRIVATE KEY-----"}, url="ssh://h/r")


def test_explain_keeps_credentials_out_of_unknown_errors() -> None:
    redact.register("sekrit-value-42")
    text = explain("fatal: weird https://u:pw-in-url@h/r failed with sekrit-value-42\n")
    assert "pw-in-url" not in text
    assert "sekrit-value-42" not in text
    assert explain("ssh: connect to host 1 port 2: Connection refused") == (
        "cannot connect: connection refused"
    )
