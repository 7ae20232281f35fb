"""benchmarks/scale.py at a tiny size: 40 objects in 2 Syncs on the emulator, the whole flow.

The benchmark is the evidence for issue 16's scale goals (docs/benchmarks.md); this keeps it
runnable: the operator as its own process, first reconcile, no-op intervals, one changed file,
peak RSS, and its ``RESULT`` line parsing to the figures, with the no-op intervals making no
write and opening no SOPS file (read from the operator's own metrics, so a regression that
writes status or decrypts again on every interval fails here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^RESULT (?P<pairs>.*)$", re.MULTILINE)
KEYS = {
    "objects", "first_wall_s", "first_cpu_s", "noop_wall_s", "noop_cpu_s", "noop_reads",
    "noop_writes", "noop_decryptions", "noop_unwraps", "change_wall_s", "change_cpu_s",
    "peak_rss_mb",
}  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_scale_benchmark_reports_a_noop_interval_without_writes_or_decryptions(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "benchmarks/scale.py", "--objects", "40", "--syncs", "2",
         "--repositories", "1", "--interval", "2", "--noop-runs", "2", "--changes", "2",
         "--plot", str(tmp_path / "scale.png")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = RESULT.search(result.stdout)
    assert found is not None, result.stdout
    figures = dict(pair.split("=", 1) for pair in found["pairs"].split())
    assert set(figures) == KEYS
    values = {k: float(v) for k, v in figures.items()}
    assert values["objects"] == 40
    assert values["noop_writes"] == 0
    assert values["noop_decryptions"] == 0
    assert values["noop_unwraps"] == 0
    # Each interval reads something (the Repository, the keys): the counter is really read.
    assert values["noop_reads"] > 0
    for key in ("first_wall_s", "first_cpu_s", "change_wall_s", "peak_rss_mb"):
        assert values[key] > 0, key
    # One size: no growth table; the plot is drawn, or skipped saying why.
    assert ("plot written to" in result.stdout) or ("plot skipped: matplotlib" in result.stdout)
    assert "40 objects present" in result.stdout
    # the benchmark's temporary directory is gone with its processes
    assert not list(tmp_path.glob("sg-scale-bench-*"))
