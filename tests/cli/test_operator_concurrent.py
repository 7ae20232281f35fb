"""``operator --concurrent N``: how many Sync reconciles run at once reaches the settings.

The limit itself (at most N at once, and N reached) is tested end to end in
tests/operator/test_sync_turns.py; this checks the flag a deployment sets gets there, and that a
value that would stop every reconcile (0) or exhaust the API server is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sealed_gitops.cli import operator_cmds
from sealed_gitops.cli.main import cli
from sealed_gitops.operator.settings import OperatorSettings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[OperatorSettings]:
    """The settings the command would run the operator with (nothing is started)."""
    seen: list[OperatorSettings] = []

    async def record(settings: OperatorSettings) -> None:
        seen.append(settings)

    monkeypatch.setattr(operator_cmds, "_run", record)
    return seen


def _operator(tmp_path: Path, *args: str) -> tuple[int, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = CliRunner().invoke(
        cli,
        ["operator", "--kubeconfig", str(kubeconfig), "--metrics-port", "off",
         "--webhook-port", "off", "--ui-port", "off", *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_the_default_and_a_given_value_reach_the_settings(
    started: list[OperatorSettings], tmp_path: Path
) -> None:
    code, output = _operator(tmp_path)
    assert code == 0, output
    code, output = _operator(tmp_path, "--concurrent", "8")
    assert code == 0, output
    assert [s.concurrent_syncs for s in started] == [OperatorSettings.concurrent_syncs, 8]


@pytest.mark.parametrize("value", ["0", "-1", "65", "three"])
def test_a_value_out_of_range_is_refused_before_anything_runs(
    started: list[OperatorSettings], tmp_path: Path, value: str
) -> None:
    code, output = _operator(tmp_path, "--concurrent", value)
    assert code == 2, output
    assert "--concurrent" in output
    assert started == []
