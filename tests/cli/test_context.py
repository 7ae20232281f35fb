"""``--context`` and ``-n/--namespace`` wherever ``--kubeconfig`` is.

The behaviour is checked with a kubeconfig of two contexts: its current-context points at a
closed port, and ``--context good`` at the cluster (the emulator, or SEALED_GITOPS_E2E_KUBECONFIG).
A command that ignored ``--context`` would fail to connect, so each passing command proves it
used the context it was given.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.keyring_target import keyring_ref
from sealed_gitops.cli.main import cli
from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.resources import REQUESTED_AT, object_path
from tests.cli.test_consistency import COMMAND_TREE
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    setup,
)

#: Commands with --kubeconfig but no --context, and why (each one is a known gap, not a rule).
#: commands with --kubeconfig that take no -n/--namespace, and why
NO_NAMESPACE = {
    "demo": "the story makes and deletes a namespace of its own: it never takes one",
}


@pytest.mark.parametrize(("path", "command"), COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_context_and_namespace_wherever_kubeconfig_is(path: str, command: click.Command) -> None:
    flags = {flag for param in command.params for flag in param.opts}
    if "--kubeconfig" not in flags:
        return
    if path not in NO_NAMESPACE:
        assert {"-n", "--namespace"} <= flags, path
    assert "--context" in flags, path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_contexts(kubeconfig: Path, tmp_path: Path) -> Path:  # noqa: F811 - the fixture above
    """A kubeconfig whose current context is unreachable, and whose context "good" works."""
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    bad_cluster = {**cluster["cluster"], "server": f"https://127.0.0.1:{_closed_port()}"}
    config["clusters"].append({"name": "bad", "cluster": bad_cluster})
    config["contexts"] = [
        {"name": "good", "context": dict(context["context"])},
        {"name": "bad", "context": {**context["context"], "cluster": "bad"}},
    ]
    config["current-context"] = "bad"
    path = tmp_path / "two-contexts.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_status_reconcile_suspend_resume_follow_context_and_namespace(
    setup: Setup,  # noqa: F811 - the fixture imported above
    two_contexts: Path,
) -> None:
    ns = setup.namespace
    setup.objects()
    k = ("--kubeconfig", str(two_contexts))
    without = _run("status", "-n", ns, *k)
    assert without.exit_code == 1, without.output  # the current context: a closed port
    shown = _run("status", "-n", ns, *k, "--context", "good", "-o", "json")
    assert shown.exit_code == 0, shown.output
    assert [row["name"] for row in json.loads(shown.stdout)] == ["app"]

    asked = _run("reconcile", "app", "-n", ns, *k, "--context", "good")
    assert asked.exit_code == 0, asked.output
    sync = setup.kube.get(object_path("Sync", ns, "app")) or {}
    assert REQUESTED_AT in sync["metadata"]["annotations"]

    assert _run("suspend", "app", "-n", ns, *k, "--context", "good").exit_code == 0
    assert (setup.kube.get(object_path("Sync", ns, "app")) or {})["spec"]["suspend"] is True
    resumed = _run("resume", f"{ns}/app", "-n", ns, *k, "--context", "good")
    assert resumed.exit_code == 0, resumed.output
    assert (setup.kube.get(object_path("Sync", ns, "app")) or {})["spec"]["suspend"] is False

    clash = _run("suspend", "other/app", "-n", ns, *k, "--context", "good")
    assert clash.exit_code == 1 and "but -n says" in clash.stderr
    bare = _run("suspend", "app", *k, "--context", "good")
    assert bare.exit_code == 1 and "NAME with -n NAMESPACE" in bare.stderr


def test_keys_list_takes_namespace_and_context(
    setup: Setup,  # noqa: F811 - the fixture imported above
    client: KubeClient,  # noqa: F811
    two_contexts: Path,
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    client.request(
        "POST",
        f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/keyrings",
        body={
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "KeyRing",
            "metadata": {"name": "cluster", "namespace": ns},
            "spec": {},
        },
        action="create",
        what="KeyRing",
    )
    args = ["keys", "list", "-n", ns, "--keyring", "cluster", "--repo", str(tmp_path)]
    result = _run(*args, "--kubeconfig", str(two_contexts), "--context", "good", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("keyring", "namespace", "expected"),
    [("a/b", None, "a/b"), ("b", "a", "a/b"), ("a/b", "a", "a/b"), (None, None, None)],
)
def test_keyring_ref(keyring: str | None, namespace: str | None, expected: str | None) -> None:
    assert keyring_ref(keyring, namespace) == expected


@pytest.mark.parametrize(("keyring", "namespace"), [(None, "a"), ("c/b", "a")])
def test_keyring_ref_refuses(keyring: str | None, namespace: str) -> None:
    with pytest.raises(ConfigError):
        keyring_ref(keyring, namespace)
