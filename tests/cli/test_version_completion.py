"""``sealed-gitops version`` (client, and operator when reachable) and ``completion``.

The operator's version is read from its Deployment in the emulator (or
SEALED_GITOPS_E2E_KUBECONFIG); an unreachable cluster is an answer, not a failure. Completion is
exercised the way a shell does it: the script from ``completion SHELL`` calls the program back with
``_SEALED_GITOPS_COMPLETE`` set, here done directly in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sealed_gitops import __version__
from sealed_gitops.cli.main import cli
from sealed_gitops.cli.meta_cmds import COMPLETE_VAR, VERSION_FIELDS, _image_tag
from sealed_gitops.cluster import KubeClient
from tests.cli.test_context import two_contexts
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    setup,
)

__all__ = ["two_contexts"]

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_the_client_version_has_one_source() -> None:
    assert importlib.metadata.version("sealed-gitops") == __version__
    result = _run("version", "--client", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "client": __version__,
        "operator": None,
        "deployment": None,
        "error": "not asked (--client)",
    }
    assert _run("--version").stdout.strip().endswith(__version__)


def _deployment(image: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    selector = {
        "app.kubernetes.io/name": "sealed-gitops",
        "app.kubernetes.io/component": "operator",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sealed-gitops-operator", "labels": {**selector, **(labels or {})}},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "operator", "image": image}]},
            },
        },
    }


@pytest.mark.parametrize(
    ("image", "labels", "expected"),
    [
        ("registry.example:5000/team/sealed-gitops:1.2.3", None, "1.2.3"),
        ("sealed-gitops:0.1.0", {"app.kubernetes.io/version": "0.9.0"}, "0.9.0"),
    ],
)
def test_version_reads_the_operator_deployment(
    setup: Setup,  # noqa: F811 - the fixture imported above
    client: KubeClient,  # noqa: F811
    kubeconfig: Path,  # noqa: F811
    image: str,
    labels: dict[str, str] | None,
    expected: str,
) -> None:
    ns = setup.namespace
    client.request(
        "POST",
        f"/apis/apps/v1/namespaces/{ns}/deployments",
        body=_deployment(image, labels),
        action="create",
        what="Deployment",
    )
    args = ["version", "--kubeconfig", str(kubeconfig), "-n", ns]
    text = _run(*args)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        f"client: {__version__}",
        f"operator: {expected} ({ns}/sealed-gitops-operator)",
    ]
    as_json = json.loads(_run(*args, "-o", "json").stdout)
    assert tuple(as_json) == VERSION_FIELDS
    assert as_json["operator"] == expected and as_json["error"] is None


def test_version_without_an_operator_or_a_cluster(
    setup: Setup,  # noqa: F811 - the fixture imported above
    kubeconfig: Path,  # noqa: F811
    two_contexts: Path,
) -> None:
    absent = _run("version", "--kubeconfig", str(kubeconfig), "-n", setup.namespace)
    assert absent.exit_code == 0, absent.output
    assert absent.stdout.splitlines()[1] == f"operator: not installed in {setup.namespace}"
    unreachable = _run("version", "--kubeconfig", str(two_contexts), "-o", "json")
    assert unreachable.exit_code == 0, unreachable.output
    answer = json.loads(unreachable.stdout)
    assert answer["client"] == __version__ and answer["operator"] is None
    assert answer["error"].startswith("not reachable")


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("sealed-gitops:0.1.0", "0.1.0"),
        ("localhost:5000/sealed-gitops", None),  # the colon is the registry's port
        ("ghcr.io/x/sealed-gitops:v1@sha256:" + "0" * 64, "v1"),
        ("ghcr.io/x/sealed-gitops@sha256:" + "0" * 64, None),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert _image_tag(image) == tag


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shell_script(shell: str) -> None:
    result = _run("completion", shell)
    assert result.exit_code == 0, result.output
    assert COMPLETE_VAR in result.stdout and "sealed-gitops" in result.stdout
    if shell == "bash":
        # The script is valid bash.
        subprocess.run(["bash", "-n"], input=result.stdout, text=True, check=True)


def _complete(words: str, cword: int) -> list[str]:
    env = {
        **os.environ,
        COMPLETE_VAR: "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


def test_completion_answers_commands_subcommands_and_options() -> None:
    assert _complete("sealed-gitops ver", 1) == ["verify", "version"]
    assert "rotate" in _complete("sealed-gitops keys ", 2)
    assert "--output-file" in _complete("sealed-gitops seal x.yaml --output", 3)
    assert _complete("sealed-gitops status -o ", 3) == ["table", "json"]


def test_completion_without_a_known_shell_is_a_usage_error() -> None:
    result = _run("completion", "tcsh")
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
