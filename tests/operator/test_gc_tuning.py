"""The operator command raises the collector's young threshold for its own process only
(operator/gc_tuning.py): a large heap is walked far less often, and importing the package or
the CLI changes nothing for anyone else."""

from __future__ import annotations

import subprocess
import sys

from sealed_gitops.operator.gc_tuning import YOUNG_THRESHOLD


def _in_fresh_process(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def test_tune_collector_raises_only_the_young_threshold() -> None:
    out = _in_fresh_process(
        "import gc; gc.set_threshold(700, 11, 12);"
        "from sealed_gitops.operator.gc_tuning import tune_collector;"
        "print(tune_collector(), gc.get_threshold())"
    )
    assert out == f"({YOUNG_THRESHOLD}, 11, 12) ({YOUNG_THRESHOLD}, 11, 12)"


def test_importing_the_cli_and_the_operator_leaves_the_thresholds_alone() -> None:
    out = _in_fresh_process(
        "import gc; before = gc.get_threshold();"
        "import sealed_gitops.cli.main, sealed_gitops.cli.operator_cmds,"
        " sealed_gitops.operator.runner;"
        "print(gc.get_threshold() == before)"
    )
    assert out == "True"
