"""Issue 15, Must 3: a correction of a live change is drift, never a Git change.

Someone edits a live Secret (here with the real ``kubectl edit``, and ``kubectl patch`` with a
field manager of their own); the operator restores it. That correction is recorded as drift: a
``DriftCorrected`` Event, a ``drift-corrected`` audit line and the
``sealed_gitops_drift_corrected_total`` metric, each naming the field manager the API recorded for
the edit, and none naming the author of the commit being reconciled. ``audit --cluster`` keeps
naming the commit that last set the values.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.operator.runner import OperatorThread

from .conftest import Setup, decoded, wait_for
from .manifests import config_doc, run_audit_cluster, sample, secret_doc

pytestmark = pytest.mark.e2e

ALICE = ("Alice Admin", "alice@example.invalid")
BOB = ("Bob Builder", "bob@example.invalid")
EDITOR = "mallory-console"


def _commit_of(setup: Setup) -> str | None:
    live = setup.kube.secret("db") or {}
    return ((live.get("metadata") or {}).get("annotations") or {}).get("sealed-gitops.io/commit")




def _live_edit(how: str, kubectl: Path, kubeconfig: Path, ns: str, tmp_path: Path) -> str:
    """Change the live Secret's password with kubectl; returns the field manager it used."""
    edited = base64.b64encode(b"mallory-live-edit").decode()
    base = [str(kubectl), "--kubeconfig", str(kubeconfig), "-n", ns]
    env = dict(os.environ)
    if how == "edit":
        script = tmp_path / "editor.py"
        script.write_text(
            "import pathlib, re, sys\n"
            "path = pathlib.Path(sys.argv[1])\n"
            f"text = re.sub(r'(?m)^  password: .*$', '  password: {edited}', path.read_text())\n"
            "path.write_text(text)\n"
        )
        env["KUBE_EDITOR"] = f"{sys.executable} {script}"
        command, manager = [*base, "edit", "secret", "db"], "kubectl-edit"
    else:
        patch = json.dumps({"data": {"password": edited}})
        command = [*base, "patch", "secret", "db", "--type", "merge", "-p", patch]
        command, manager = [*command, f"--field-manager={EDITOR}"], EDITOR
    subprocess.run(command, check=True, capture_output=True, timeout=60, env=env)
    return manager


@pytest.mark.parametrize("how", ["edit", "patch"])
def test_a_live_edit_is_corrected_as_drift_by_its_field_manager(
    how: str,
    tmp_path: Path,
    setup: Setup,
    operator_factory: Callable[..., OperatorThread],
    kubeconfig: Path,
    kubectl_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ns = setup.namespace
    alice = setup.push(
        {"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="alice-set-this"))},
        author=ALICE,
    )
    setup.objects()
    caplog.set_level(logging.INFO, logger="sealed_gitops.audit")
    thread = operator_factory(ns)
    wait_for(lambda: _commit_of(setup) == f"main@sha1:{alice}", what="Secret db from Alice")
    # Bob's commit changes something else: the Secret stays as Alice set it
    bob = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")}, author=BOB)
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{bob}",
        what="Bob's revision applied",
    )
    assert _commit_of(setup) == f"main@sha1:{alice}"

    # a live edit with the real kubectl: `kubectl edit` (its editor a script) or `kubectl patch`
    # under a field manager of its own; both are PATCHes the API records under that manager
    editor = _live_edit(how, kubectl_path, kubeconfig, ns, tmp_path)
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("password") == "alice-set-this",
        what="the live edit corrected",
    )

    def drift_events() -> list[str]:
        return [
            str(e.get("message"))
            for e in setup.kube.events()
            if e.get("reason") == "DriftCorrected"
        ]

    [message] = wait_for(drift_events, what="DriftCorrected Event")
    assert editor in message and "db" in message and "password" in message
    assert "Bob" not in message and "Alice" not in message
    applied = [str(e.get("message")) for e in setup.kube.events() if e.get("reason") == "Applied"]
    assert not [m for m in applied if "Bob" in m and "Secret" in m], applied

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sealed_gitops.audit"]
    drift = [line for line in lines if line["event"] == "drift-corrected"]
    assert len(drift) == 1, lines
    assert drift[0]["object"] == f"Secret/{ns}/db"
    assert drift[0]["manager"] == editor
    assert drift[0]["keys"] == {"password": "changed"}
    assert "author" not in drift[0]
    assert drift[0]["restoredCommit"] == f"main@sha1:{alice}"
    assert not [line for line in lines if line.get("commit") == bob]  # Bob set no Secret value

    metric = sample(thread, "sealed_gitops_drift_corrected_total", namespace=ns, manager=editor)
    assert metric == 1.0

    # the values live now are Alice's: audit --cluster still says so
    [row] = json.loads(run_audit_cluster(kubeconfig, ns).stdout)
    assert row["commit"] == f"main@sha1:{alice}"
    assert row["author"] == "Alice Admin <alice@example.invalid>"

    everything = caplog.text + message + json.dumps(row)
    assert "mallory-live-edit" not in everything and "alice-set-this" not in everything
