"""``--help`` imports no heavy library, so it answers at once (issue 15: it took ~2 s).

A timing assertion would be flaky on a shared machine; what makes help slow is importing kopf,
the kubernetes client, cryptography, rich, GitPython..., so the test runs the real entry point in
a fresh interpreter and checks none of them is in ``sys.modules`` afterwards. The list of commands
comes from ``main.SUMMARIES``; that each line there is the command's own docstring line is
checked here too, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from sealed_gitops.cli.main import COMMANDS, SUMMARIES, cli

ROOT = Path(__file__).resolve().parents[2]

#: Top-level packages whose import is what made --help slow (or that only a running command needs).
HEAVY = (
    "kopf",
    "kubernetes",
    "urllib3",
    "aiohttp",
    "cryptography",
    "rich",
    "yaml",
    "git",
    "pyrage",
    "hvac",
    "requests",
)

PROBE = """
import json, sys
from sealed_gitops.cli import main as m
sys.argv = ["sealed-gitops", *sys.argv[1:]]
try:
    m.main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return done.stdout, set(json.loads(done.stderr.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_top_level_help_imports_no_command_module_and_no_heavy_library() -> None:
    out, modules = _modules_after("--help")
    assert "Commands:" in out and "status" in out and "git-merge" not in out
    assert _heavy(modules) == []
    assert not [m for m in modules if m.startswith("sealed_gitops.cli.") and m.endswith("_cmds")]


@pytest.mark.parametrize(
    "command",
    ["status", "reconcile", "suspend", "resume", "operator", "version", "tree", "events", "trace"],
)
def test_cluster_command_help_imports_no_heavy_library(command: str) -> None:
    out, modules = _modules_after(command, "--help")
    assert "--kubeconfig" in out
    assert _heavy(modules) == []


#: Commands whose --help still imports cryptography/yaml (the SOPS and key modules they share import
#: them at the top), but no kubernetes client and no GitPython.
KEY_COMMANDS = [["diff"], ["keys"], ["keys", "list"], ["keys", "rotate"], ["reencrypt"]]


@pytest.mark.parametrize("command", KEY_COMMANDS, ids=" ".join)
def test_key_and_diff_help_import_no_kubernetes_client(command: list[str]) -> None:
    out, modules = _modules_after(*command, "--help")
    assert "Usage:" in out
    assert [m for m in _heavy(modules) if m.split(".")[0] in ("kubernetes", "urllib3", "git")] == []


def test_summaries_are_the_commands_own_lines() -> None:
    assert set(SUMMARIES) == set(COMMANDS)
    ctx = click.Context(cli)
    for name in sorted(COMMANDS):
        command = cli.get_command(ctx, name)
        assert command is not None
        expected = None if command.hidden else command.get_short_help_str(limit=1000)
        assert SUMMARIES[name] == expected, name
