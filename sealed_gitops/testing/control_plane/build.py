"""Build etcd, kube-apiserver and kube-controller-manager from their Go modules, once per version.

Why from source: no package registry ships these binaries, but both projects are Go modules on the
module proxy. ``go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x`` is refused because that
module's go.mod replaces its staging modules (``k8s.io/api`` ...) with directories, and a
dependency's replace directives do not apply. So a tiny generated module requires
``k8s.io/kubernetes`` and ``go.etcd.io/etcd/server/v3`` and replaces every staging module listed in
the release's own go.mod with its published ``v0.x.y``; one ``go build`` then compiles all three
commands, sharing the packages they have in common (grpc, protobuf, the etcd client ...).

etcd built in the same module gets Kubernetes' dependency versions (minimum version selection over
both); that is the combination Kubernetes' own integration tests run, with etcd embedded.

The cache: ``<root>/<k8s>-<etcd>/`` holds the three binaries and ``stamp.json``. The directory is
built under a temporary name and renamed into place only after a successful build, so a present
stamp means complete binaries; a file lock keeps two pytest-xdist workers from building at once
(the second waits, then finds the stamp). The generated module (go.mod, go.sum) stays beside the
binaries as the record of what was built.

Measured on the project's 2-core machine (``/usr/bin/time -v``, Go 1.26.8): a cold build, with an
empty module cache and an empty build cache, takes 4 min 41 s wall (407 s user; about 600 MB of
modules downloaded, 2.9 GB peak memory); the cache then holds 240 MB of binaries, and a second
call returns them in 0.2 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing import gocache
from sealed_gitops.testing.control_plane import versions

__all__ = [
    "CACHE_ENV",
    "Binaries",
    "cache_directory",
    "cached_binaries",
    "ensure_binaries",
    "find_go",
    "go_version",
]

#: Overrides the cache root (the version sub-directory is still added below it).
CACHE_ENV = "SEALED_GITOPS_CONTROL_PLANE_CACHE"
_STAMP = "stamp.json"
_ETCD = "etcd"
#: A cold build takes 5-10 minutes on two idle cores; this bounds a hung download, not a slow CI.
_BUILD_TIMEOUT = 3 * 60 * 60

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Binaries:
    """The three executables of one cached build."""

    directory: Path

    @property
    def etcd(self) -> Path:
        return self.directory / _ETCD

    @property
    def kube_apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.directory / "kube-controller-manager"

    def all(self) -> tuple[Path, ...]:
        return (self.etcd, self.kube_apiserver, self.kube_controller_manager)


def find_go() -> Path | None:
    """The newest ``go`` of Go's default install location and the one on PATH (Debian's
    ``golang-go`` 1.19, which the Sealed Secrets interop tests use, may shadow Go 1.26)."""
    candidates = gocache.go_candidates()
    return gocache.newest_go(candidates) or (candidates[0] if candidates else None)


def go_version(go: Path) -> tuple[int, int]:
    """``(1, 26)`` for go1.26.8; raises ControlPlaneError when it cannot be read."""
    found = gocache.go_version(go)
    if found is None:
        raise ControlPlaneError(f"cannot read the Go version of {go} (go env GOVERSION)")
    return found


def cache_directory(*, root: Path | None = None) -> Path:
    """``$SEALED_GITOPS_CONTROL_PLANE_CACHE`` or ``$XDG_CACHE_HOME/sealed-gitops/control-plane``,
    plus the version key."""
    if root is None:
        root = gocache.cache_root(CACHE_ENV, "control-plane")
    return root / versions.cache_key()


def cached_binaries(*, root: Path | None = None) -> Binaries | None:
    """The cached build if it is complete (stamp present, every binary executable), else None."""
    binaries = Binaries(cache_directory(root=root))
    if not (binaries.directory / _STAMP).is_file():
        return None
    if all(path.is_file() and os.access(path, os.X_OK) for path in binaries.all()):
        return binaries
    return None


def ensure_binaries(*, root: Path | None = None, progress: Progress | None = None) -> Binaries:
    """Return the cached binaries, building them first if they are missing.

    Safe to call from several processes at once: the build runs under a file lock and the others
    wait for it. ``progress`` receives one line per step (the CLI prints them on stderr).
    """
    say = progress or (lambda _line: None)
    target = cache_directory(root=root)
    return gocache.ensure_cached(
        target,
        cached=lambda: cached_binaries(root=root),
        build=lambda: _build_into(target, say=say),
        what="the control plane",
        say=say,
        incomplete=ControlPlaneError,
    )


def _build_into(target: Path, *, say: Progress) -> None:
    go = find_go()
    if go is None:
        raise ControlPlaneError(
            "Go was not found (neither `go` on PATH nor /usr/local/go/bin/go); it is needed once "
            f"to build kube-apiserver {versions.KUBERNETES_VERSION} and etcd "
            f"{versions.ETCD_VERSION}"
        )
    found_version = go_version(go)
    if found_version < versions.MINIMUM_GO and not os.environ.get("GOTOOLCHAIN"):
        wanted = ".".join(map(str, versions.MINIMUM_GO))
        raise ControlPlaneError(
            f"{go} is Go {found_version[0]}.{found_version[1]}; Kubernetes "
            f"{versions.KUBERNETES_VERSION} needs Go {wanted} or newer (or set GOTOOLCHAIN)"
        )
    env = _go_environment(go)
    staging = target.parent / f".{target.name}.building"
    shutil.rmtree(staging, ignore_errors=True)  # a build killed half-way left it behind
    staging.mkdir(parents=True)
    try:
        module = staging / "module"
        module.mkdir()
        started = time.monotonic()
        say(
            f"reading the staging modules of {versions.KUBERNETES_MODULE}"
            f" {versions.KUBERNETES_VERSION}"
        )
        staging_modules = _staging_modules(go, env=env, cwd=module)
        (module / "go.mod").write_text(_generated_go_mod(staging_modules), encoding="utf-8")
        bin_dir = staging / "bin"
        bin_dir.mkdir()
        packages = [
            f"{versions.KUBERNETES_MODULE}/cmd/{name}" for name in versions.KUBERNETES_COMMANDS
        ]
        say(
            f"building {', '.join(versions.KUBERNETES_COMMANDS)} and etcd {versions.ETCD_VERSION} "
            "with go build (a cold build takes 5-10 minutes on two cores)"
        )
        _run_go(
            go,
            [
                "build",
                "-trimpath",
                "-ldflags=" + " ".join(["-s", "-w", *versions.version_ldflags()]),
                "-o",
                f"{bin_dir}/",
                *packages,
                versions.ETCD_MAIN_PACKAGE,
            ],
            env=env,
            cwd=module,
            timeout=_BUILD_TIMEOUT,
        )
        # `go build -o dir/` names a command after its import path without the /vN suffix.
        (bin_dir / "server").rename(bin_dir / _ETCD)
        for path in bin_dir.iterdir():
            path.rename(staging / path.name)
        bin_dir.rmdir()
        elapsed = time.monotonic() - started
        stamp = {
            "kubernetes": versions.KUBERNETES_VERSION,
            "etcd": versions.ETCD_VERSION,
            "go": ".".join(map(str, found_version)),
            "build_seconds": round(elapsed, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete directory without a stamp
        staging.rename(target)  # atomic: readers see all binaries with the stamp, or nothing
        say(f"built in {elapsed:.0f} s into {target}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _go_environment(go: Path) -> dict[str, str]:
    return gocache.go_environment(go)


def _staging_modules(go: Path, *, env: dict[str, str], cwd: Path) -> list[str]:
    """The modules the release's go.mod replaces with ``./staging/src/...`` directories."""
    query = f"{versions.KUBERNETES_MODULE}@{versions.KUBERNETES_VERSION}"
    listing = _run_go(go, ["list", "-m", "-json", query], env=env, cwd=cwd, timeout=600)
    try:
        go_mod = Path(json.loads(listing)["GoMod"]).read_text(encoding="utf-8")
    except (ValueError, KeyError, OSError) as exc:
        raise ControlPlaneError(f"cannot read the go.mod of {query}: {exc}") from exc
    modules = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", go_mod, flags=re.MULTILINE)
    if not modules:
        raise ControlPlaneError(f"the go.mod of {query} replaces no staging module")
    return sorted(set(modules))


def _generated_go_mod(staging_modules: list[str]) -> str:
    tag = versions.staging_version()
    replaces = "".join(f"\t{name} => {name} {tag}\n" for name in staging_modules)
    return (
        "// Generated by sealed_gitops.testing.control_plane.build; never edited by hand.\n"
        "module sealed-gitops.invalid/control-plane\n\n"
        "go 1.26.0\n\n"
        "require (\n"
        f"\t{versions.KUBERNETES_MODULE} {versions.KUBERNETES_VERSION}\n"
        f"\t{versions.ETCD_MODULE} {versions.ETCD_VERSION}\n"
        ")\n\n"
        f"replace (\n{replaces})\n"
    )


def _run_go(go: Path, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    return gocache.run_go(go, args, env=env, cwd=cwd, timeout=timeout, error=ControlPlaneError)
