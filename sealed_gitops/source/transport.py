"""Running git against a remote: credentials, timeouts, and errors a person can act on.

Why a module of its own: every network step must (1) get its credentials through private files,
never argv or the URL, (2) stop within its timeout even when ssh or a curl helper hangs, and (3)
fail as a :class:`SourceError` whose text names the cause (refused connection, unknown host key,
wrong ref, bad credentials, timeout) and contains no secret. GitPython's command wrapper cannot
kill a whole process group on timeout, so network steps run here through :class:`GitRunner`, a
seam the tests replace to count round trips.

Credentials live for one call in a private ``0700`` temp directory: the ssh key in a ``0600`` file
named by ``GIT_SSH_COMMAND -i``, https credentials in a ``0600`` file read by a one-line credential
helper passed through ``GIT_CONFIG_*`` environment variables (not argv). The directory is removed
when the call ends, whatever happened.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.errors import ConfigError, SourceError
from sealed_gitops.redact import redact
from sealed_gitops.source.auth import (
    Auth,
    HttpAuth,
    RemoteUrl,
    SshAuth,
    effective_http_auth,
    safe_url,
)

__all__ = ["Deadline", "GitResult", "GitRunner", "Session", "base_env", "open_session"]

#: Transports git may use for anything this process starts (no ext::, no fd::).
ALLOWED_PROTOCOLS = "file:git:ssh:https:http"

#: Below this many bytes per second for :data:`LOW_SPEED_SECONDS`, an http transfer is aborted.
LOW_SPEED_BYTES = 1000
LOW_SPEED_SECONDS = 30


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


class GitRunner:
    """Runs one git command. Subclass it in tests to count or observe calls; never mock git."""

    def run(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path | None = None,
        timeout: float,
        network: bool,
    ) -> GitResult:
        """Run ``git *args``; kill its whole process group if it outlives ``timeout`` seconds."""
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a timeout can kill ssh and remote helpers too
        )
        try:
            out, err = proc.communicate(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise
        return GitResult(
            proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


class Deadline:
    """The time left of one fetch's overall timeout, shared by its steps."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ConfigError("timeout must be positive")
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()


def base_env() -> dict[str, str]:
    """An environment that ignores the user's and the system's git config (no url rewrites,
    credential helpers, filters or hooks from outside) and never prompts."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS,
        LC_ALL="C",  # error texts are matched below
    )
    return env


@dataclass
class Session:
    """One call's transport: the URL to give git, its environment and the deadline."""

    remote: RemoteUrl
    env: dict[str, str]
    deadline: Deadline
    runner: GitRunner

    def run(self, args: Sequence[str], *, cwd: Path | None = None, what: str) -> GitResult:
        """Run a network step; any failure becomes a :class:`SourceError` about ``what``."""
        left = self.deadline.left()
        if left <= 0:
            raise SourceError(
                f"{self.remote.url}: {what} timed out after {self.deadline.seconds:g}s"
            )
        try:
            result = self.runner.run(args, env=self.env, cwd=cwd, timeout=left, network=True)
        except subprocess.TimeoutExpired as exc:
            raise SourceError(
                f"{self.remote.url}: {what} timed out after {self.deadline.seconds:g}s"
            ) from exc
        except OSError as exc:
            raise SourceError(f"cannot run git: {exc.strerror}") from exc
        if result.returncode != 0:
            raise SourceError(f"{self.remote.url}: {what} failed: {explain(result.stderr)}")
        return result


_CAUSES = (
    ("Host key verification failed", "the server's host key is not in known_hosts (refused)"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "the server's host key changed (refused)"),
    ("No RSA host key is known", "the server's host key is not in known_hosts (refused)"),
    ("Connection refused", "cannot connect: connection refused"),
    ("Couldn't connect to server", "cannot connect to the server"),
    ("Connection timed out", "cannot connect: connection timed out"),
    ("Could not resolve host", "host name does not resolve"),
    ("Name or service not known", "host name does not resolve"),
    ("Permission denied", "authentication refused by the server"),
    ("Authentication failed", "authentication refused by the server"),
    ("terminal prompts disabled", "the server asks for credentials and none were given"),
    ("could not read Username", "the server asks for credentials and none were given"),
    ("couldn't find remote ref", "the ref does not exist on the remote"),
    ("not our ref", "the server does not serve that commit"),
    ("does not appear to be a git repository", "no git repository at that path"),
    ("not found", "repository not found"),
    ("SSL certificate problem", "TLS certificate not trusted"),
    ("certificate verification failed", "TLS certificate not trusted"),
)


def explain(stderr: str) -> str:
    """A short cause from git's stderr, redacted and without credentials in any URL it quotes."""
    for needle, cause in _CAUSES:
        if needle in stderr:
            return cause
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else "git exited with an error"
    words = [safe_url(w) if "://" in w else w for w in last.split()]
    return redact(" ".join(words))[:300]


def _private_file(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return path


def _ssh_env(directory: Path, auth: SshAuth | None, deadline: Deadline) -> dict[str, str]:
    if auth is None or not auth.known_hosts.strip():
        raise ConfigError("ssh remotes need known_hosts: host keys are always checked")
    known_hosts = _private_file(directory, "known_hosts", auth.known_hosts)
    connect = max(1, min(int(deadline.seconds), 30))
    command = [
        "ssh",
        "-F", os.devnull,  # no user or system ssh config (proxies, agents, other keys)
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", f"GlobalKnownHostsFile={os.devnull}",
        "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={connect}",
        "-o", "ServerAliveInterval=10",
        "-o", "ServerAliveCountMax=3",
        "-o", "IdentityAgent=none",
        "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
    ]  # fmt: skip
    if auth.private_key is not None:
        key = auth.private_key if auth.private_key.endswith(b"\n") else auth.private_key + b"\n"
        command += ["-i", str(_private_file(directory, "identity", key))]
    else:
        command += ["-o", "IdentityFile=none"]
    return {"GIT_SSH_COMMAND": shlex.join(command), "GIT_SSH_VARIANT": "ssh"}


def _http_env(directory: Path, remote: RemoteUrl, auth: HttpAuth | None) -> dict[str, str]:
    env = {
        "GIT_HTTP_LOW_SPEED_LIMIT": str(LOW_SPEED_BYTES),
        "GIT_HTTP_LOW_SPEED_TIME": str(LOW_SPEED_SECONDS),
    }
    # Credentials written in the URL count when the given auth has none (same rule as the cache).
    auth = effective_http_auth(remote, auth)
    if auth is None:
        return env
    if auth.has_credentials() and remote.scheme == "http" and not auth.allow_insecure_http:
        raise ConfigError("refusing to send credentials over plain http:// (use https://)")
    config: list[tuple[str, str, str]] = []
    basic = auth.basic()
    if basic is not None:
        username, password = basic
        if any(c in username + password for c in "\n\r\0"):
            raise ConfigError("https credentials must not contain line breaks")
        lines = f"username={username}\npassword={password}\n"
        creds = _private_file(directory, "credentials", lines.encode("utf-8"))
        # A shell-function helper: only "get" is answered; store/erase are ignored.
        helper = f'!f() {{ test "$1" = get && cat {shlex.quote(str(creds))}; }}; f'
        config += [("credential", "helper", helper), ("credential", "useHttpPath", "true")]
    if auth.bearer_token:
        if any(c in auth.bearer_token for c in "\n\r\0"):
            raise ConfigError("the bearer token must not contain line breaks")
        config.append(("http", "extraHeader", f"Authorization: Bearer {auth.bearer_token}"))
    if auth.ca_bundle:
        ca = _private_file(directory, "ca.pem", auth.ca_bundle)
        config.append(("http", "sslCAInfo", str(ca)))
    if config:
        # A private config file (0600, removed after the call) rather than GIT_CONFIG_* variables,
        # so that no secret sits in the environment of git or its helpers either.
        text = "".join(
            f"[{section}]\n\t{key} = {_quote(value)}\n" for section, key, value in config
        )
        env["GIT_CONFIG_GLOBAL"] = str(_private_file(directory, "gitconfig", text.encode("utf-8")))
    return env


def _quote(value: str) -> str:
    """A git config value in double quotes (backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def open_session(
    remote: RemoteUrl, auth: Auth | None, *, deadline: Deadline, runner: GitRunner
) -> Iterator[Session]:
    """Prepare credentials for one call and remove them afterwards."""
    if remote.scheme == "ssh" and auth is not None and not isinstance(auth, SshAuth):
        raise ConfigError("an ssh:// remote needs ssh auth (identity and known_hosts)")
    if remote.scheme in ("http", "https") and isinstance(auth, SshAuth):
        raise ConfigError(f"an {remote.scheme}:// remote needs username/password or a token")
    directory = Path(tempfile.mkdtemp(prefix="sg-git-"))  # mkdtemp makes it 0700
    try:
        env = base_env()
        if remote.scheme == "ssh":
            env.update(_ssh_env(directory, auth if isinstance(auth, SshAuth) else None, deadline))
        elif remote.scheme in ("http", "https"):
            env.update(_http_env(directory, remote, auth if isinstance(auth, HttpAuth) else None))
        yield Session(remote=remote, env=env, deadline=deadline, runner=runner)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
