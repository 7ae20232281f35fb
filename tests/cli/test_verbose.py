"""``-v`` works before or after the subcommand, and counts add up.

Run in a subprocess: the level is process-wide logging state, and the CLI sets it once per run.
The probe command logs one line per level and crashes, so the output shows both the level reached
and the redacted traceback that ``-vv`` adds to an internal error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.cli.test_consistency import COMMAND_TREE

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import logging, sys
import click
from sealed_gitops.cli import main as m

@click.command("probe")
def probe() -> None:
    logging.getLogger("probe").info("info-line")
    logging.getLogger("probe").debug("debug-line")
    raise RuntimeError("boom")

m.COMMANDS["probe"] = "__main__:probe"
sys.argv = ["sealed-gitops", *sys.argv[1:]]
m.main()
"""


def _probe(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "error: internal error: RuntimeError: boom" in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("args", "info", "debug"),
    [
        ([], False, False),
        (["-v"], True, False),
        (["-vv"], True, True),
        (["probe", "-v"], True, False),
        (["probe", "-vv"], True, True),
        (["probe", "--verbose", "--verbose"], True, True),
        (["-v", "probe", "-v"], True, True),
    ],
)
def test_verbose_before_or_after_the_command(args: list[str], info: bool, debug: bool) -> None:
    where = args if "probe" in args else [*args, "probe"]
    stderr = _probe(*where)
    assert ("info-line" in stderr) is info, stderr
    assert ("debug-line" in stderr) is debug, stderr
    assert ("Traceback" in stderr) is debug, stderr


@pytest.mark.parametrize(("path", "command"), COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_every_command_takes_dash_v(path: str, command: click.Command) -> None:
    flags = {flag for param in command.params for flag in param.opts}
    assert {"-v", "--verbose"} <= flags, path
