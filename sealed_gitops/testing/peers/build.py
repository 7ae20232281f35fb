"""Build the peers (Flux's controllers, Sealed Secrets) from their Go modules, once per version.

Why a generated wrapper module: ``go install module@version`` refuses a module whose go.mod has
``replace`` directives, and Flux's have them. So each peer gets a tiny module that requires the
peer at its pin and repeats the peer's own version replaces (read from its go.mod with
``go mod edit -json``); one ``go build`` then compiles the peer's commands with exactly the
dependency versions the peer's go.mod selects, since the wrapper requires nothing else. Each peer
has its own wrapper: building them together would let minimum version selection raise one peer's
dependencies to the other's.

The cache: ``<root>/<name>-<version>/`` holds the binaries, the peer's CRDs under ``crds/`` (copied
from the module cache, so a test needs no network and no GOMODCACHE lookup) and ``stamp.json``. It
is built under a temporary name and renamed into place after a successful build, so a present stamp
means a complete directory; a file lock per peer makes a second pytest-xdist worker wait and then
find the stamp. The wrapper (go.mod, go.sum) stays beside the binaries as the record of the build.

Go: the newest of ``/usr/local/go/bin/go`` and the ``go`` on PATH that is at least
:data:`versions.MINIMUM_GO` (Debian's ``/usr/bin/go`` 1.19 is on some PATHs and cannot build
these). ``GOTOOLCHAIN`` is passed through when set (``GOTOOLCHAIN=go1.27.3`` is the approved newer
toolchain, for a pin whose go line the machine's Go is too old for) and set to ``local`` otherwise,
so Go never downloads a toolchain unasked.

Measured on the project's 2-core machine with Go 1.26.8 (:data:`MEASURED`, wall seconds): the
cold builds ran at a load average of about 19, with other sessions' builds and test runs on the
same two cores and the three peers built at the same time, so they say more about that afternoon
than about the peers. The Go module cache already held the Kubernetes modules of the control
plane's build; Flux's own dependencies (cloud SDKs, go-git, helm, oras) were downloaded in that
time. A warm ``python -m sealed_gitops.testing.peers.build`` finds the three stamps and builds
nothing in 1.9 s, most of it Python's start-up. Binaries (stripped): source-controller 147 MB,
kustomize-controller 123 MB, the Sealed Secrets controller 59 MB and kubeseal 38 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing import gocache
from sealed_gitops.testing.peers import versions
from sealed_gitops.testing.peers.versions import Peer

__all__ = [
    "CACHE_ENV",
    "MEASURED",
    "Built",
    "cache_directory",
    "cached",
    "ensure_built",
    "find_go",
]

#: Overrides the cache root (the ``<name>-<version>`` sub-directory is still added below it).
CACHE_ENV = "SEALED_GITOPS_PEERS_CACHE"
#: The build times measured on 2026-12-05 (seconds, wall; ``build_seconds`` of each stamp).
MEASURED = {
    "cold_source_controller": 1573.2,
    "cold_kustomize_controller": 921.0,
    "cold_sealed_secrets": 848.8,
    "warm_all_three": 1.9,
}
_GO_CANDIDATES = (Path("/usr/local/go/bin/go"),)
_STAMP = "stamp.json"
#: A cold build of one peer takes minutes; this bounds a hung download, not a slow machine.
_BUILD_TIMEOUT = 2 * 60 * 60

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Built:
    """One peer's cache directory: its binaries and CRD manifests."""

    peer: Peer
    directory: Path

    def binary(self, name: str) -> Path:
        return self.directory / name

    def crd_files(self) -> list[Path]:
        return sorted((self.directory / "crds").glob("*.yaml"))


def find_go() -> Path | None:
    """The newest usable ``go``: Go's default install location or the one on PATH."""
    return gocache.newest_go(gocache.go_candidates(_GO_CANDIDATES), minimum=versions.MINIMUM_GO)


def cache_directory(peer: Peer, *, root: Path | None = None) -> Path:
    """``$SEALED_GITOPS_PEERS_CACHE`` or ``$XDG_CACHE_HOME/sealed-gitops/peers``, plus the key."""
    if root is None:
        root = gocache.cache_root(CACHE_ENV, "peers")
    return root / peer.cache_key


def cached(peer: Peer, *, root: Path | None = None) -> Built | None:
    """The cached build if complete (stamp present, every binary executable), else None."""
    built = Built(peer, cache_directory(peer, root=root))
    if not (built.directory / _STAMP).is_file():
        return None
    for name, _ in peer.commands:
        path = built.binary(name)
        if not (path.is_file() and os.access(path, os.X_OK)):
            return None
    return built


def ensure_built(
    peer: Peer, *, root: Path | None = None, progress: Progress | None = None
) -> Built:
    """Return the peer's cached build, building it first if missing (safe across processes)."""
    say = progress or (lambda _line: None)
    target = cache_directory(peer, root=root)
    return gocache.ensure_cached(
        target,
        cached=lambda: cached(peer, root=root),
        build=lambda: _build_into(peer, target, say=say),
        what=f"{peer.name} {peer.version}",
        say=say,
        incomplete=ControlPlaneError,
    )


def _build_into(peer: Peer, target: Path, *, say: Progress) -> None:
    go = find_go()
    if go is None:
        wanted = ".".join(map(str, versions.MINIMUM_GO))
        raise ControlPlaneError(
            f"no Go {wanted} or newer found (/usr/local/go/bin/go or `go` on PATH); it is "
            f"needed once to build {peer.name} {peer.version}"
        )
    env = _go_environment(go)
    staging = target.parent / f".{target.name}.building"
    shutil.rmtree(staging, ignore_errors=True)  # a build killed half-way left it behind
    (staging / "module").mkdir(parents=True)
    try:
        started = time.monotonic()
        module = staging / "module"
        say(f"reading the go.mod of {peer.module}@{peer.version}")
        download = json.loads(
            _run_go(
                go,
                ["mod", "download", "-json", f"{peer.module}@{peer.version}"],
                env=env,
                cwd=module,
                timeout=600,
            )
        )
        upstream = json.loads(
            _run_go(
                go, ["mod", "edit", "-json", download["GoMod"]], env=env, cwd=module, timeout=60
            )
        )
        (module / "go.mod").write_text(_wrapper_go_mod(peer, upstream), encoding="utf-8")
        packages = [f"{peer.import_path}/{pkg}".rstrip("/") for _, pkg in peer.commands]
        say(f"building {peer.name} {peer.version} with go build (minutes on two cores)")
        _run_go(
            go,
            [
                "build",
                "-trimpath",
                f"-ldflags=-s -w -X {peer.version_variable}={peer.version}",
                "-o",
                f"{staging}/",
                *packages,
            ],
            env=env,
            cwd=module,
            timeout=_BUILD_TIMEOUT,
        )
        for (name, _), package in zip(peer.commands, packages, strict=True):
            built_as = staging / package.rsplit("/", 1)[-1]  # go names it after the last element
            if built_as.name != name:
                built_as.rename(staging / name)
        _copy_crds(peer, Path(download["Dir"]), staging / "crds")
        elapsed = time.monotonic() - started
        stamp = {
            "peer": peer.name,
            "module": peer.module,
            "version": peer.version,
            "go": _run_go(go, ["env", "GOVERSION"], env=env, cwd=module, timeout=60).strip(),
            "build_seconds": round(elapsed, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete directory without a stamp
        staging.rename(target)  # atomic: readers see the binaries with the stamp, or nothing
        say(f"built {peer.name} in {elapsed:.0f} s into {target}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _wrapper_go_mod(peer: Peer, upstream: dict[str, object]) -> str:
    """The generated module: require the peer, repeat its version replaces, map its path."""
    go_line = str(upstream.get("Go") or "1.26.0")
    replaces: list[str] = []
    for entry in upstream.get("Replace") or []:  # type: ignore[attr-defined]
        new = entry["New"]
        if not new.get("Version"):
            # ``=> ./api``: a directory of the peer's repository; the published module is used.
            continue
        old = entry["Old"]
        left = old["Path"] + (f" {old['Version']}" if old.get("Version") else "")
        replaces.append(f"\t{left} => {new['Path']} {new['Version']}\n")
    for module, version in peer.substitutes:
        replaces.append(f"\t{module} => {module} {version}\n")
    if peer.declared_path:
        replaces.append(f"\t{peer.declared_path} => {peer.module} {peer.version}\n")
    return (
        "// Generated by sealed_gitops.testing.peers.build; never edited by hand.\n"
        f"module sealed-gitops.invalid/peer-{peer.name}\n\n"
        f"go {go_line}\n\n"
        f"require {peer.import_path} {peer.version}\n\n"
        + (f"replace (\n{''.join(replaces)})\n" if replaces else "")
    )


def _copy_crds(peer: Peer, module_dir: Path, into: Path) -> None:
    into.mkdir()
    for relative in peer.crds:
        source = module_dir / relative
        files = sorted(source.glob("*.yaml")) if source.is_dir() else [source]
        if not files or not all(path.is_file() for path in files):
            raise ControlPlaneError(
                f"{peer.name} {peer.version} has no CRD manifests at {relative}"
            )
        for path in files:
            shutil.copyfile(path, into / path.name)


def _go_environment(go: Path) -> dict[str, str]:
    env = gocache.go_environment(go)
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _run_go(go: Path, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    return gocache.run_go(go, args, env=env, cwd=cwd, timeout=timeout, error=ControlPlaneError)


def main() -> int:
    """``python -m sealed_gitops.testing.peers.build``: build what is missing, print the cache."""
    for peer in (*versions.PEERS.values(), *versions.TOOLS.values()):
        started = time.monotonic()
        built = ensure_built(peer, progress=lambda line: print(line, file=sys.stderr))
        print(f"{peer.name} {peer.version}: {built.directory} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
