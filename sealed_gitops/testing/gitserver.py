"""Real git servers on loopback for tests and demos: ``git daemon``, ``sshd`` and smart HTTP(S).

Why real servers: the source layer's promises (strict host keys, credentials never in argv,
timeouts, shallow fetches, protocol v2) only mean something against the programs users run. Each
server binds 127.0.0.1 on a port the OS picks, serves bare repositories under one base path, and is
stopped by its own PID. :class:`WorkRepo` writes, commits (optionally GPG-signed), tags and pushes,
so a test or the demo can play the part of a developer.

``git daemon`` and ``sshd`` take a port number rather than a socket, so a free port is picked by
binding port 0, then the server is started on it and retried on the rare race.
"""

from __future__ import annotations

import base64
import datetime
import getpass
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["GitDaemon", "HttpGitServer", "SshServer", "WorkRepo", "init_bare"]

SSHD = "/usr/sbin/sshd"
_CLEAN_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    full_env = {**os.environ, **_CLEAN_GIT_ENV, **(env or {})}
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def init_bare(path: Path) -> Path:
    """Create an empty bare repository whose HEAD points at ``main``."""
    _git("init", "-q", "--bare", "-b", "main", str(path))
    return path


class GitDaemon:
    """``git daemon --export-all --enable=receive-pack`` serving ``base`` on loopback."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GitDaemon:
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}",
                 f"--base-path={self.base}", "--export-all", "--enable=receive-pack",
                 "--informative-errors", str(self.base)],
                env={**os.environ, **_CLEAN_GIT_ENV},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if _wait_listening(self.port, self.proc, "git daemon"):
                return self
        raise RuntimeError("git daemon could not bind a port")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        _stop(self.proc)


class SshServer:
    """An ``sshd`` on loopback accepting one deploy key for the current user.

    ``known_hosts`` holds the per-session host key in the ``[127.0.0.1]:port`` form and
    ``deploy_key`` the client's private key; both are what a Repository's auth Secret carries.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.dir = Path(tempfile.mkdtemp(prefix="sg-sshd-"))
        self.user = getpass.getuser()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.known_hosts = b""
        self.deploy_key = b""
        self.other_key = b""  # a key the server does not accept

    @staticmethod
    def available() -> bool:
        return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None

    def _keygen(self, name: str) -> tuple[bytes, bytes]:
        path = self.dir / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return path.read_bytes(), (self.dir / f"{name}.pub").read_bytes()

    def start(self) -> SshServer:
        _, host_pub = self._keygen("host_key")
        self.deploy_key, deploy_pub = self._keygen("deploy_key")
        self.other_key, _ = self._keygen("other_key")
        (self.dir / "authorized_keys").write_bytes(deploy_pub)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        host_key_type, host_key_data = host_pub.split()[:2]
        for _ in range(5):
            self.port = _free_port()
            config = self.dir / "sshd_config"
            config.write_text(
                f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {self.dir / 'host_key'}\n"
                f"PidFile {self.dir / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
                f"AllowUsers {self.user}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                "PermitRootLogin prohibit-password\nAcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n"
            )
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_listening(self.port, self.proc, "sshd"):
                line = b"[127.0.0.1]:%d %s %s\n" % (self.port, host_key_type, host_key_data)
                self.known_hosts = line
                return self
        raise RuntimeError("sshd did not start (see `sshd -t -f` on its config)")

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{(self.base / name).resolve()}"

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def _self_signed() -> tuple[bytes, bytes]:
    """A throw-away certificate for 127.0.0.1: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class _GitHttpHandler(BaseHTTPRequestHandler):
    server: _GitHttpServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _authorized(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        token = base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        return header == f"Basic {token}"

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        self.server.requests += 1
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {
            **os.environ,
            **_CLEAN_GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.server.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": self.server.credentials[0] if self.server.credentials else "anonymous",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        out = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    base: Path
    credentials: tuple[str, str] | None
    requests: int


class HttpGitServer:
    """Smart HTTP via ``git http-backend`` with basic auth, over TLS when ``tls=True``.

    With TLS, :attr:`ca_pem` is the self-signed certificate a client must trust.
    """

    def __init__(
        self, base: Path, *, username: str | None = None, password: str | None = None,
        tls: bool = False,
    ) -> None:  # fmt: skip
        self.base = base
        self.credentials = (username, password) if username and password else None
        self.tls = tls
        self.ca_pem = b""
        self._server: _GitHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="sg-http-"))

    def start(self) -> HttpGitServer:
        server = _GitHttpServer(("127.0.0.1", 0), _GitHttpHandler)
        server.base, server.credentials, server.requests = self.base, self.credentials, 0
        if self.tls:
            self.ca_pem, key_pem = _self_signed()
            (self._dir / "cert.pem").write_bytes(self.ca_pem)
            (self._dir / "key.pem").write_bytes(key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._dir / "cert.pem", self._dir / "key.pem")
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def requests(self) -> int:
        return self._server.requests if self._server else 0

    def url(self, name: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)


class WorkRepo:
    """A developer's clone: write files, commit (signed if asked), tag, push to a remote."""

    def __init__(self, path: Path, *, remote: str | Path | None = None) -> None:
        self.path = path
        _git("init", "-q", "-b", "main", str(path))
        if remote is not None:
            _git("remote", "add", "origin", str(remote), cwd=path)

    def write(self, files: Mapping[str, str | bytes]) -> WorkRepo:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
        return self

    def commit(
        self,
        message: str,
        *,
        author: tuple[str, str] = ("Dev One", "dev1@example.invalid"),
        sign_with: str | None = None,
        gnupghome: Path | None = None,
        amend: bool = False,
    ) -> str:
        """Commit everything; with ``sign_with`` (a fingerprint) sign it with gpg from
        ``gnupghome``. Returns the new commit's sha."""
        _git("add", "-A", cwd=self.path)
        args = ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
        env: dict[str, str] = {}
        if sign_with:
            args += ["-c", "gpg.program=gpg", "-c", f"user.signingkey={sign_with}"]
            if gnupghome is not None:
                env["GNUPGHOME"] = str(gnupghome)
        args += ["commit", "-q", "--allow-empty", "-m", message]
        if sign_with:
            args.append("-S")
        if amend:
            args.append("--amend")
        _git(*args, cwd=self.path, env=env)
        return self.head()

    def head(self) -> str:
        return _git("rev-parse", "HEAD", cwd=self.path)

    def tag(self, name: str, *, annotated: bool = False) -> str:
        extra = ["-a", "-m", name] if annotated else []
        _git("-c", "user.name=Tagger", "-c", "user.email=t@example.invalid", "tag", *extra, name,
             cwd=self.path)  # fmt: skip
        return self.head()

    def reset_hard(self, rev: str) -> None:
        _git("reset", "-q", "--hard", rev, cwd=self.path)

    def push(self, *refs: str, force: bool = False) -> None:
        _git("push", "-q", *(["--force"] if force else []), "origin", *(refs or ("main",)),
             cwd=self.path)  # fmt: skip
