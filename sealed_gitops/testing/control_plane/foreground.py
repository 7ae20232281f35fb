"""``python -m sealed_gitops.testing control-plane``: the real control plane for people and scripts.

Why a foreground command: a script (or a person at a terminal) gets a real API server with one
line, waits for the kubeconfig file to appear, and ends it with SIGTERM or Ctrl-C, like ``serve``
does for the emulator. Progress goes to stderr (a cold build takes minutes and must not look
hung); stdout carries one line with the URL, for scripts to read.

SIGTERM and SIGINT are turned into one exception so that every ``finally`` runs wherever the
signal lands: during the build (the ``go`` child is killed), half-way through the start (what was
started is stopped), or while serving.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing.control_plane.build import ensure_binaries
from sealed_gitops.testing.control_plane.plane import ControlPlane

__all__ = ["run_control_plane"]

#: How often the foreground loop checks that the three processes are still alive.
_WATCH_INTERVAL = 1.0


class _Stop(Exception):
    """A stop signal arrived."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # Further signals are ignored: the stop that follows is bounded (SIGKILL after a grace
    # period) and must not be cut short half-way, leaving a server running.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _progress(line: str) -> None:
    sys.stderr.write(f"control-plane: {line}\n")
    sys.stderr.flush()


def run_control_plane(*, kubeconfig: Path, workdir: Path | None = None) -> int:
    """Build what is missing, start, write ``kubeconfig``, serve until SIGTERM/SIGINT; exit code."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        binaries = ensure_binaries(progress=_progress)
        with ControlPlane.start(
            workdir=workdir, kubeconfig_path=kubeconfig, binaries=binaries, progress=_progress
        ) as plane:
            sys.stdout.write(f"serving {plane.url}; kubeconfig {plane.kubeconfig_path}\n")
            sys.stdout.flush()
            while True:
                plane.check()  # a server that died makes the command fail, not hang
                time.sleep(_WATCH_INTERVAL)
    except _Stop as stop:
        _progress(f"{stop}: stopped")
        return 0
    except ControlPlaneError as exc:
        _progress(f"failed: {exc}")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
