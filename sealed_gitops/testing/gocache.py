"""Go programs built from their modules once per version and cached: what every such build shares.

Why this module exists: the control plane (etcd, kube-apiserver, kube-controller-manager) and the
peers (Flux's controllers, Sealed Secrets) are built the same way for the test tiers: pick a Go
new enough (the newest of Go's default install location and the ``go`` on PATH, because
Debian's ``golang-go`` 1.19 may come first on PATH of a machine whose Go 1.26 is in
/usr/local/go), find the cache below ``$<OVERRIDE>`` or ``$XDG_CACHE_HOME/sealed-gitops``, and
let one process build while the others (pytest-xdist workers, a second ``make test``) wait on a
file lock and then take what it built. A build writes into a temporary directory and renames it
into place with its stamp last, so a complete-looking cache entry is a complete one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = [
    "GO_DEFAULT",
    "build_lock",
    "cache_root",
    "ensure_cached",
    "go_candidates",
    "go_environment",
    "go_version",
    "newest_go",
    "run_go",
]

#: Where Go's official tarball installs it; not on PATH on every machine.
GO_DEFAULT = Path("/usr/local/go/bin/go")

T = TypeVar("T")
Progress = Callable[[str], None]
#: How much of go's output an error quotes: enough for the failing package and its message.
_TAIL_CHARS = 4000


def go_version(go: Path) -> tuple[int, int] | None:
    """``(1, 26)`` for go1.26.8; None when ``go`` cannot say."""
    try:
        out = subprocess.run(
            [str(go), "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def go_candidates(defaults: Iterable[Path] = (GO_DEFAULT,)) -> list[Path]:
    """``defaults`` (Go's default install location) and the ``go`` on PATH, those that exist."""
    candidates = list(defaults)
    on_path = shutil.which("go")
    if on_path:
        candidates.append(Path(on_path))
    return [go for go in candidates if go.is_file() and os.access(go, os.X_OK)]


def newest_go(candidates: Iterable[Path], *, minimum: tuple[int, int] = (0, 0)) -> Path | None:
    """The candidate with the newest Go of at least ``minimum``, or None."""
    usable = []
    for go in candidates:
        found = go_version(go)
        if found is not None and found >= minimum:
            usable.append((found, str(go), go))
    return max(usable)[2] if usable else None


def cache_root(override_env: str, leaf: str) -> Path:
    """``$<override_env>``, else ``$XDG_CACHE_HOME`` (or ~/.cache) ``/sealed-gitops/<leaf>``."""
    override = os.environ.get(override_env)
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "sealed-gitops" / leaf


@contextlib.contextmanager
def build_lock(path: Path, *, what: str, say: Progress) -> Iterator[None]:
    """Hold the exclusive lock ``path``; say so when another process holds it first."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another build of {what} ({path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_cached(
    target: Path,
    *,
    cached: Callable[[], T | None],
    build: Callable[[], None],
    what: str,
    say: Progress,
    incomplete: Callable[[str], Exception],
) -> T:
    """What ``cached()`` finds for ``target``, after ``build()`` made it if it was missing.

    The check is made again under the lock: another process may have built it meanwhile.
    ``incomplete`` makes the error for a build that returned without a complete entry.
    """
    found = cached()
    if found is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target.parent / f".{target.name}.lock", what=what, say=say):
        found = cached()
        if found is None:
            build()
            found = cached()
    if found is None:  # pragma: no cover - a build renames a complete directory or raises
        raise incomplete(f"the build of {what} finished but {target} is incomplete")
    return found


def go_environment(go: Path) -> dict[str, str]:
    """The environment for a build in a generated module without a go.sum, with ``go``'s directory
    first on PATH (go starts sub-tools by name, ahead of an older Go on PATH)."""
    env = dict(os.environ)
    env["GOFLAGS"] = " ".join(filter(None, [env.get("GOFLAGS", ""), "-mod=mod"]))
    env["PATH"] = os.pathsep.join(filter(None, [str(go.parent), env.get("PATH", "")]))
    return env


def run_go(
    go: Path,
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    error: Callable[[str], Exception],
) -> str:
    """Run one go command and return its stdout; a failure raises ``error`` quoting the tail of
    its output."""
    with tempfile.TemporaryFile() as output:
        # stderr to a file, not a pipe: go prints a line per downloaded module and must not block.
        process = subprocess.Popen(
            [str(go), *args], stdout=subprocess.PIPE, stderr=output, env=env, cwd=cwd
        )
        try:
            stdout, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise error(f"go {args[0]} did not finish in {timeout:.0f} s") from exc
        finally:
            if process.poll() is None:  # interrupted (Ctrl-C, SIGTERM) or timed out
                process.kill()
                process.wait()
        if process.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace")[-_TAIL_CHARS:]
            raise error(
                f"go {' '.join(args[:2])} failed with exit status {process.returncode}:\n{tail}"
            )
    return stdout.decode(errors="replace")
