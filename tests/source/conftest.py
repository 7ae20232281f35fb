"""Fixtures for the git source tests: real servers (git daemon, sshd, smart HTTPS) on loopback,
origin repositories with branches and tags, GPG signers, and a runner that counts network calls.

Servers and keys are session-scoped (each pytest-xdist worker has its own); repositories that a
test rewrites are made per test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealed_gitops.source import GitResult, GitRunner
from sealed_gitops.testing.gitserver import GitDaemon, HttpGitServer, SshServer, WorkRepo, init_bare
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home

HTTP_USER = "alice"
HTTP_PASSWORD = "hunter2-canary-7f3a9c"  # distinctive, so a leak is easy to spot

_names = itertools.count()


class CountingRunner(GitRunner):
    """The project's own seam: records every git command the source layer runs.

    Tests that must observe or answer a command override :meth:`before`, not ``run``, so the
    signature of :meth:`GitRunner.run` is written once here.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def before(self, args: Sequence[str], env: dict[str, str]) -> GitResult | None:
        """Called before each command; an answer returned here is used instead of running git
        (and the command is recorded as a network call)."""
        return None

    def run(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path | None = None,
        timeout: float,
        network: bool,
    ) -> GitResult:
        answer = self.before(args, env)
        if network or answer is not None:
            self.calls.append((list(args), dict(env)))
        if answer is not None:
            return answer
        return super().run(args, env=env, cwd=cwd, timeout=timeout, network=network)

    def commands(self) -> list[str]:
        return [args[0] if args[0] != "--git-dir" else args[2] for args, _ in self.calls]


@pytest.fixture
def runner() -> CountingRunner:
    return CountingRunner()


@dataclass
class Origin:
    """A bare repository under the servers' base path and a work repo that pushes to it."""

    name: str
    bare: Path
    work: WorkRepo
    commits: dict[str, str]  # label -> sha

    @property
    def file_url(self) -> str:
        return f"file://{self.bare}"


def make_origin(base: Path, work_root: Path) -> Origin:
    """main: c1 (v1.0.0) - c2 (v1.2.3, annotated) - c3 (v1.3.0) - c4 (v2.0.0-rc.1) - c5;
    branch dev: c5 - c6."""
    name = f"repo{next(_names)}.git"
    bare = init_bare(base / name)
    work = WorkRepo(work_root / name.removesuffix(".git"), remote=bare)
    commits: dict[str, str] = {}
    for label, tag, annotated in (
        ("c1", "v1.0.0", False),
        ("c2", "v1.2.3", True),
        ("c3", "v1.3.0", False),
        ("c4", "v2.0.0-rc.1", False),
        ("c5", None, False),
    ):
        work.write({"deploy/app.yaml": f"kind: ConfigMap\nmetadata: {{name: {label}}}\n"})
        commits[label] = work.commit(f"commit {label}")
        if tag:
            work.tag(tag, annotated=annotated)
    work.push("main", "--tags")
    work.write({"deploy/app.yaml": "kind: ConfigMap\nmetadata: {name: c6}\n"})
    commits["c6"] = work.commit("commit c6")
    work.push("HEAD:refs/heads/dev")
    work.reset_hard(commits["c5"])
    return Origin(name=name, bare=bare, work=work, commits=commits)


@pytest.fixture(scope="session")
def git_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("git-base")


@pytest.fixture(scope="session")
def shared_origin(git_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """Read-only origin shared by the tests that never push."""
    return make_origin(git_base, tmp_path_factory.mktemp("work"))


@pytest.fixture
def origin(git_base: Path, tmp_path: Path) -> Origin:
    """An origin of this test's own, for tests that push or force-push."""
    return make_origin(git_base, tmp_path / "work")


@pytest.fixture(scope="session")
def daemon(git_base: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(git_base).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sshd(git_base: Path) -> Iterator[SshServer]:
    if not SshServer.available():
        pytest.skip("openssh-server is not installed (the Makefile installs it)")
    server = SshServer(git_base)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        pytest.skip(f"sshd could not start here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def https_server(git_base: Path) -> Iterator[HttpGitServer]:
    server = HttpGitServer(git_base, username=HTTP_USER, password=HTTP_PASSWORD, tls=True).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Signers:
    home: GnupgHome
    trusted: str  # fingerprint whose public key the Repository lists
    stranger: str  # fingerprint of a key nobody listed

    def public(self, fingerprint: str) -> bytes:
        return self.home.export_public(fingerprint)


@pytest.fixture(scope="session")
def signers() -> Iterator[Signers]:
    with gnupg_home() as home:
        trusted = home.generate_key("Trusted Signer <trusted@example.invalid>")
        stranger = home.generate_key("Stranger <stranger@example.invalid>")
        yield Signers(home=home, trusted=trusted, stranger=stranger)


@dataclass
class SignedOrigin:
    url: str
    commits: dict[str, str]  # branch -> sha: "signed", "unsigned", "stranger"


@pytest.fixture(scope="session")
def signed_origin(
    git_base: Path, tmp_path_factory: pytest.TempPathFactory, signers: Signers
) -> SignedOrigin:
    name = f"signed{next(_names)}.git"
    bare = init_bare(git_base / name)
    work = WorkRepo(tmp_path_factory.mktemp("signed-work") / "w", remote=bare)
    commits = {}
    for branch, key in (
        ("signed", signers.trusted),
        ("unsigned", None),
        ("stranger", signers.stranger),
    ):
        work.write({"deploy/app.yaml": f"kind: ConfigMap\nmetadata: {{name: {branch}}}\n"})
        commits[branch] = work.commit(
            f"{branch} commit", sign_with=key, gnupghome=signers.home.path
        )
        work.push(f"HEAD:refs/heads/{branch}")
    return SignedOrigin(url=f"file://{bare}", commits=commits)
