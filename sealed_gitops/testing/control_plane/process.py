"""Start, watch and stop the control plane's processes, by PID, with their output in log files.

Why: three long-lived servers must never outlive the test session that started them. Each one
runs in its own session (so a Ctrl-C at a terminal reaches only the foreground Python, which then
stops them in order) and, where util-linux's ``setpriv`` exists, is started through
``setpriv --pdeathsig KILL`` so the kernel kills it if its parent dies: a pytest run killed with
SIGKILL leaves no etcd behind. (``setpriv`` sets the flag and execs the server, so the PID we hold
is the server's; a ``preexec_fn`` would do the same but is unsafe in a threaded parent.)
Stopping is SIGTERM, a grace period, then SIGKILL, to that PID only. A process that exits while
we wait for it to become ready is reported with the tail of its log, which is where etcd and
kube-apiserver say why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sealed_gitops.errors import ControlPlaneError

__all__ = ["Process", "free_port", "start_process"]

#: How much of a log an error quotes.
_TAIL_CHARS = 3000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """One started server: its name, its Popen, and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = _TAIL_CHARS) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check(self) -> None:
        """Raise ControlPlaneError (with the log's tail) if the process has exited."""
        if self.running():
            return
        raise ControlPlaneError(
            f"{self.name} exited with status {self.popen.returncode}; the end of {self.log}:\n"
            f"{self.log_tail()}"
        )

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM, wait ``grace`` seconds, then SIGKILL; always reaps the child."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        self.popen.wait()


def start_process(
    name: str, argv: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None
) -> Process:
    """Start ``argv`` (with ``env``, default this process's) with stdout and stderr appended to
    ``log``.

    The parent-death signal is tied to the calling *thread*: start the control plane from a thread
    that lives as long as it should (the main thread, as pytest fixtures and the CLI do).
    """
    setpriv = shutil.which("setpriv")
    command = [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv
    with log.open("ab") as output:
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ControlPlaneError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    return Process(name=name, popen=popen, log=log, argv=argv)
