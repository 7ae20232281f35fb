"""The foundation a checkout must keep: its layout, the README's two commands, no committed private
key outside the tests, and ``mypy --strict`` over the package and its tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: What the top level holds (issue 2, "Foundation"); each entry is (path, what must be in it).
LAYOUT = [
    ("pyproject.toml", None),
    ("sealed_gitops/__init__.py", None),
    ("keys/README.md", None),
    ("keys/demo/age.txt", None),
    ("crds/kustomization.yaml", None),
    ("deploy/kustomization.yaml", None),
    ("tests/conftest.py", None),
    ("docs/index.md", None),
    ("docs/coming-from-sops.md", None),
    (".importlinter", None),
    (".pre-commit-hooks.yaml", None),
    (".ci/run", "make test"),
    ("Makefile", None),
]

#: A private key of any kind that age, OpenSSH, OpenSSL or PEM writes.
PRIVATE_KEY = re.compile(rb"BEGIN (RSA |EC |OPENSSH |)PRIVATE KEY|AGE-SECRET-KEY-1")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (it comes with the dev extra)")
    return found


@pytest.mark.parametrize(("path", "needle"), LAYOUT, ids=[p for p, _ in LAYOUT])
def test_the_top_level_holds_what_the_layout_promises(path: str, needle: str | None) -> None:
    target = ROOT / path
    assert target.is_file(), f"{path} is missing"
    if needle is not None:
        assert needle in target.read_text(encoding="utf-8")


def test_the_demo_recipient_is_a_public_age_key_only() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "keys/demo/age.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines
    assert all(re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", line) for line in lines), lines


def test_readme_quick_start_is_two_commands_that_install_and_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the quick start has no sh block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target, runs in (("demo", "sealed-gitops demo"), ("test", "pytest")):
        rule = re.search(rf"^{target}: install\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert rule is not None, f"make {target} does not install first"
        assert runs in rule.group(1)
    # CI runs the README's test command, nothing else.
    ci = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ci[-1] == "make test"


def test_no_private_key_is_committed_outside_tests_and_benchmarks() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the committed files cannot be listed")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    offenders = []
    for raw in filter(None, listed):
        name = raw.decode("utf-8", "surrogateescape")
        if name.startswith(("tests/", "benchmarks/")):
            continue
        path = ROOT / name
        if path.is_file() and PRIVATE_KEY.search(path.read_bytes()):
            offenders.append(name)
    assert offenders == []


def test_mypy_strict_is_clean_over_the_package_and_the_tests() -> None:
    result = subprocess.run(
        [_tool("mypy"), "--strict", "--no-error-summary", "sealed_gitops", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # No allow-list: every module of the package and every test stays clean. Exit 1 means type
    # errors, 2 means mypy itself failed; either way the output says which.
    assert result.returncode == 0, result.stdout + result.stderr
