"""Prometheus's ``promtool``, built from its Go module once per version, for the monitoring tests.

Why a real promtool: the alerting rules and the dashboard in ``deploy/monitoring/`` are PromQL, and
the only judge of PromQL is Prometheus's own parser and rule evaluator. ``promtool check rules``
parses a rule file as Prometheus loads it; ``promtool test rules`` evaluates the rules over given
series in virtual time, which is how the tests check that each alert fires on the metrics a running
operator exposes (and stays silent on a healthy one).

The pin: ``github.com/prometheus/prometheus`` **v0.316.0**, the Go module version of Prometheus
3.16 (Prometheus 3 tags its Go module v0.3MM.P), the newest the module proxy serves here; its go.mod
asks for ``go 1.26.7`` and has no ``replace``, so the peers' generic build (a wrapper module that
requires it, one ``go build`` of ``cmd/promtool``) builds it with exactly its own dependency
versions. It carries no CRDs. The binary is cached below ``$SEALED_GITOPS_TOOLS_CACHE`` or
``$XDG_CACHE_HOME/sealed-gitops/tools`` as ``promtool-v0.316.0/promtool`` (see
:mod:`sealed_gitops.testing.peers.build` for the stamp, the lock and the atomic rename).

Measured (:data:`MEASURED`, wall seconds, on the project's 2-core machine at a load average of
6-11 from other sessions' tests; the Go module cache already held the Kubernetes modules of the
control plane's build): the cold build downloads Prometheus's service-discovery SDKs (AWS, Azure,
GCP ...), which promtool links for ``check service-discovery``, and compiles them in about six
minutes; the binary is 88 MB. A warm ``python -m sealed_gitops.testing.promtool`` finds the stamp
in 0.3 s, most of it Python's start-up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Final

from sealed_gitops.testing import gocache
from sealed_gitops.testing.peers import build
from sealed_gitops.testing.peers.versions import Peer

__all__ = ["CACHE_ENV", "MEASURED", "PROMTOOL", "cached_promtool", "ensure_promtool"]

#: Overrides the cache root (the ``promtool-<version>`` sub-directory is still added below it).
CACHE_ENV = "SEALED_GITOPS_TOOLS_CACHE"

PROMTOOL: Final = Peer(
    name="promtool",
    module="github.com/prometheus/prometheus",
    version="v0.316.0",
    commands=(("promtool", "cmd/promtool"),),
    crds=(),
)

#: Build times measured on 2026-12-05 (seconds, wall).
MEASURED = {
    "cold_promtool": 354.6,
    "warm_promtool": 0.3,
}


def _root() -> Path:
    return gocache.cache_root(CACHE_ENV, "tools")


def cached_promtool(*, root: Path | None = None) -> Path | None:
    """The cached promtool binary, or None when it was not built yet."""
    built = build.cached(PROMTOOL, root=root or _root())
    return built.binary("promtool") if built else None


def ensure_promtool(*, root: Path | None = None, progress: build.Progress | None = None) -> Path:
    """The promtool binary, built first if missing (safe across processes; needs Go then)."""
    built = build.ensure_built(PROMTOOL, root=root or _root(), progress=progress)
    return built.binary("promtool")


def main() -> int:
    """``python -m sealed_gitops.testing.promtool``: build if missing, print the binary's path."""
    started = time.monotonic()
    path = ensure_promtool(progress=lambda line: print(line, file=sys.stderr))
    print(f"promtool {PROMTOOL.version}: {path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
