"""``tree``, ``events`` and ``trace`` against what a real operator run leaves behind.

One in-process operator applies a SOPS Secret and a ConfigMap from a Git remote (the operator
tests' fixtures, against the emulator or SEALED_GITOPS_E2E_KUBECONFIG); the three commands then
read its inventory, its Events and the ownership labels and annotations. The Secret's value holds
the canary, and no output may contain it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sealed_gitops.cli.inspect_cmds import EVENTS_FIELDS, TRACE_FIELDS, TREE_FIELDS
from sealed_gitops.cli.main import cli
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.runner import OperatorThread
from tests.cli.conftest import CANARY
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    operator_factory,
    ready,
    setup,
    wait_for,
)
from tests.operator.manifests import config_doc, secret_doc


def _run(kubeconfig: Path, *args: str) -> Result:  # noqa: F811 - a path, not the fixture
    result = CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig)])
    assert CANARY not in result.stdout and CANARY not in result.stderr
    return result


@pytest.fixture
def applied(
    setup: Setup,  # noqa: F811 - the fixture imported above
    operator_factory: Callable[..., OperatorThread],  # noqa: F811
) -> tuple[Setup, str]:
    ns = setup.namespace
    sha = setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password=CANARY + "inspect")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects(interval="1h")
    operator_factory(ns)
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", what="Ready")
    return setup, sha


def test_tree_lists_the_inventory(
    applied: tuple[Setup, str],
    kubeconfig: Path,  # noqa: F811
) -> None:
    world, _ = applied
    ns = world.namespace
    text = _run(kubeconfig, "tree", "app", "-n", ns)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        f"Sync/{ns}/app",
        f"├── ConfigMap/{ns}/settings",
        f"└── Secret/{ns}/db",
    ]
    rows = json.loads(_run(kubeconfig, "tree", f"{ns}/app", "-o", "json").stdout)
    assert [tuple(row) for row in rows] == [TREE_FIELDS] * 2
    assert {(r["kind"], r["version"], r["name"]) for r in rows} == {
        ("ConfigMap", "v1", "settings"),
        ("Secret", "v1", "db"),
    }


def test_events_of_the_sync(
    applied: tuple[Setup, str],
    kubeconfig: Path,  # noqa: F811
) -> None:
    world, _ = applied
    ns = world.namespace
    rows = json.loads(_run(kubeconfig, "events", "app", "-n", ns, "-o", "json").stdout)
    assert rows and all(tuple(row) == EVENTS_FIELDS for row in rows)
    assert {row["object"] for row in rows} == {"Sync/app"}
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    table = _run(kubeconfig, "events", f"{ns}/app")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split("\t") == ["TIME", "TYPE", "REASON", "MESSAGE"]
    assert len(table.stdout.splitlines()) == len(rows) + 1


def test_trace_a_secret_and_a_configmap_back_to_git(
    applied: tuple[Setup, str],
    kubeconfig: Path,  # noqa: F811
) -> None:
    world, sha = applied
    ns = world.namespace
    secret = json.loads(_run(kubeconfig, "trace", "Secret/db", "-n", ns, "-o", "json").stdout)
    assert tuple(secret) == TRACE_FIELDS
    assert secret["object"] == f"Secret/{ns}/db"
    assert secret["sync"] == f"{ns}/app" and secret["repository"] == f"{ns}/app"
    assert secret["url"] == f"file://{world.remote}"
    assert secret["path"].endswith("db.yaml")
    assert sha in secret["revision"]
    assert secret["author"].startswith("Dev One")
    config = _run(kubeconfig, "trace", "v1/ConfigMap/settings", "-n", ns)
    assert config.exit_code == 0, config.output
    lines = dict(line.split(":", 1) for line in config.stdout.splitlines())
    assert lines["Sync"].strip() == f"{ns}/app"
    assert sha in lines["Revision"]  # from the Sync's last applied revision


def test_trace_of_an_object_no_sync_applied(
    setup: Setup,  # noqa: F811 - the fixture imported above
    kubeconfig: Path,  # noqa: F811
) -> None:
    setup.kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "mine", "namespace": setup.namespace},
        }
    )
    result = _run(kubeconfig, "trace", "ConfigMap/mine", "-n", setup.namespace)
    assert result.exit_code == 1
    assert "was not applied by a Sync" in result.stderr


@pytest.mark.parametrize("text", ["db", "/Secret/db", "Secret/"])
def test_trace_needs_kind_and_name(text: str) -> None:
    from sealed_gitops.cli.inspect_cmds import _parse_object

    with pytest.raises(ConfigError):
        _parse_object(text)


@pytest.mark.parametrize(
    "args",
    [
        ["events", "app", "-n", "../../kube-system"],
        ["events", "team-a/a,involvedObject.kind=Secret"],
    ],
)
def test_events_refuses_a_name_that_would_change_the_request(
    args: list[str], tmp_path: Path
) -> None:
    """Refused before any client is made (the kubeconfig does not even exist)."""
    result = CliRunner().invoke(cli, [*args, "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "is not a valid" in result.stderr


def test_trace_and_events_print_no_terminal_escapes_from_the_cluster(
    applied: tuple[Setup, str],
    kubeconfig: Path,  # noqa: F811
) -> None:
    """The author and source-path annotations, and Events, are anyone's who may write them: a
    table shows them printable (an ESC sequence or a newline could rewrite the terminal or
    forge a line)."""
    world, _ = applied
    ns = world.namespace
    hostile = "Mallory \x1b[2J\x1b[31mhidden\nSync:       forged/line"
    world.kube.patch(
        f"/api/v1/namespaces/{ns}/secrets/db",
        {"metadata": {"annotations": {"sealed-gitops.io/commit-author": hostile}}},
    )
    world.kube.client.request("POST", f"/api/v1/namespaces/{ns}/events", body={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "hostile", "namespace": ns},
        "involvedObject": {"apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Sync",
                           "name": "app", "namespace": ns},
        "reason": "Applied", "type": "Normal", "message": hostile,
    }, action="create", what="Event")  # fmt: skip

    traced = _run(kubeconfig, "trace", "Secret/db", "-n", ns)
    events = _run(kubeconfig, "events", "app", "-n", ns)

    for result in (traced, events):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout
    assert [line for line in traced.stdout.splitlines() if line.startswith("Sync:")] == [
        f"Sync:       {ns}/app"
    ]
    assert "Mallory" in traced.stdout and "Mallory" in events.stdout
