"""``diff --sync NS/NAME --in-cluster`` and the keyless ``diff --sync`` (issue 15, Must 6).

The person running the CLI has no key: the Sync's age key lives only in a cluster Secret. The
Sync is suspended after its first apply and a second commit changes one value, adds a key and
removes one, so the Repository publishes a revision the live Secret does not match yet. Then:

* ``diff --in-cluster`` asks the operator, which builds and decrypts the published revision and
  answers in ``status.diff`` with key names and added/changed/removed only;
* ``diff --sync`` without ``--in-cluster`` finds no key, says so, and compares ciphertexts with
  the revision the Sync applied (from the local clone), which tells the same keys apart.

A canary value (old and new) must be absent from the status, the Events and every CLI output;
the CLI runs as a real process with an empty key environment. Runs on both tiers (emulator and
the real control plane) through the fixtures of conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops import redact
from sealed_gitops.crypto.sops import set_value, unset_value
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.operator.diff_request import DIFF_REQUESTED

from .conftest import Setup, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e

OLD_CANARY = "canary-old-Rt5w-in-cluster-diff"
NEW_CANARY = "canary-new-Vb8q-in-cluster-diff"
WAIT = 120.0


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user without any key runs it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPS_", "VAULT_", "SEALED_GITOPS_")) and k != "GNUPGHOME"
    }
    env["HOME"] = str(cwd)
    result = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    for canary in (OLD_CANARY, NEW_CANARY):
        assert canary not in result.stdout + result.stderr
    assert "ENC[" not in result.stdout + result.stderr  # nor a ciphertext
    return result


def _edit(setup: Setup, tmp_path: Path) -> str:
    """The second commit: password changed, ``extra`` added, ``user`` removed (the other
    ciphertexts kept, as sops and ``sealed-gitops set`` keep them)."""
    identity = tmp_path / "test-only.agekey"
    identity.write_text(setup.age_secret + "\n")
    ring = discover_keyring(age_identity_files=[identity])
    path = setup.repo.path / "deploy" / "db.yaml"
    data = path.read_bytes()
    data = set_value(data, '["stringData"]["extra"]', '"extra-x"', unwrapper=ring)
    data = unset_value(data, '["stringData"]["user"]', unwrapper=ring)
    # Last: this test process never decrypts the new value (the redaction scope check below).
    data = set_value(data, '["stringData"]["password"]', json.dumps(NEW_CANARY), unwrapper=ring)
    identity.unlink()
    return setup.push({"deploy/db.yaml": data.decode()}, message="rotate the password")


@pytest.fixture
def suspended_with_news(setup: Setup, operator_factory: Any, tmp_path: Path) -> str:
    """Applied at the first commit, suspended, the second commit published; its sha."""
    ns = setup.namespace
    first = setup.push(
        {
            "deploy/db.yaml": setup.encrypt(
                secret_doc("db", ns, password=OLD_CANARY, user="user-x1")
            ),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects()
    operator_factory(ns)
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{first}",
        timeout=WAIT,
        what="first apply",
    )
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"suspend": True}})
    second = _edit(setup, tmp_path)
    setup.kube.patch(
        f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/repositories/app",
        {"metadata": {"annotations": {"sealed-gitops.io/requested-at": second}}},
    )
    wait_for(
        lambda: (
            (setup.kube.repository().get("status") or {}).get("artifact", {}).get("commit")
            == second
        ),
        timeout=WAIT,
        what="the second commit published",
    )
    return second


def test_in_cluster_diff_answers_key_names_only(
    setup: Setup, suspended_with_news: str, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = setup.namespace
    result = _cli(tmp_path, "diff", "--sync", f"{ns}/app", "--in-cluster",
                  "--kubeconfig", str(kubeconfig), "--timeout", "2m", "-o", "json")  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["kind"], r["name"], r["action"]) for r in rows] == [("Secret", "db", "update")]
    assert rows[0]["keys"] == {
        "added": ["extra"], "changed": ["password"], "removed": ["user"], "unknown": [],
    }  # fmt: skip
    answer = setup.kube.status()["diff"]
    assert answer["revision"] == f"main@sha1:{suspended_with_news}"
    assert answer["requestedAt"] == setup.kube.sync()["metadata"]["annotations"][DIFF_REQUESTED]
    assert answer["truncated"] is False
    # Names and verdicts, nothing else: no value, length or digest to brute-force.
    assert answer["objects"] == [
        {
            "kind": "Secret",
            "namespace": ns,
            "name": "db",
            "action": "update",
            "keys": {"added": ["extra"], "changed": ["password"], "removed": ["user"]},
        }
    ]
    everything = json.dumps([setup.kube.sync(), setup.kube.events()])
    for canary in (OLD_CANARY, NEW_CANARY):
        assert canary not in everything
    # The new value was decrypted by the diff alone (the Sync is suspended): registered for
    # redaction in the tenant's scope, as its reconcile loop registers, not for every tenant.
    with redact.scope(ns):
        assert redact.is_registered(NEW_CANARY)
    with redact.scope(f"{ns}-other"):
        assert not redact.is_registered(NEW_CANARY)
    # Nothing was applied: the preview of a suspended Sync leaves the live Secret as it was.
    live = setup.kube.secret("db")
    assert live is not None and set(live["data"]) == {"password", "user"}

    text = _cli(tmp_path, "diff", "--sync", f"{ns}/app", "--in-cluster",
                "--kubeconfig", str(kubeconfig), "--timeout", "2m")  # fmt: skip
    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"update Secret {ns}/db"
    assert "  ~ key password: changed" in lines and "  - key user: removed" in lines


def test_keyless_sync_diff_falls_back_to_ciphertexts(
    setup: Setup, suspended_with_news: str, kubeconfig: Path
) -> None:
    """The failure this issue reports: ``diff --sync`` without a key said "no available key".
    Now it says which keys the published change touches, from ciphertexts alone."""
    ns = setup.namespace
    work = setup.repo.path
    result = _cli(work, "diff", "deploy", "--sync", f"{ns}/app",
                  "--kubeconfig", str(kubeconfig), "-o", "json")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "comparing encrypted objects by ciphertext" in result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"db"}
    assert rows["db"]["action"] == "update"
    assert rows["db"]["keys"] == {
        "added": ["extra"], "changed": ["password"], "removed": ["user"], "unknown": [],
    }  # fmt: skip
    explicit = _cli(work, "diff", "deploy", "--sync", f"{ns}/app", "--no-decrypt",
                    "--kubeconfig", str(kubeconfig), "-o", "json")  # fmt: skip
    assert explicit.returncode == 1, explicit.stderr
    assert json.loads(explicit.stdout) == json.loads(result.stdout)


def test_in_cluster_diff_without_an_operator_times_out_clearly(
    setup: Setup, kubeconfig: Path, tmp_path: Path
) -> None:
    setup.objects()
    result = _cli(tmp_path, "diff", "--sync", f"{setup.namespace}/app", "--in-cluster",
                  "--kubeconfig", str(kubeconfig), "--timeout", "1s")  # fmt: skip
    assert result.returncode == 2
    assert "no answer from the operator within 1s" in result.stderr
    missing = _cli(tmp_path, "diff", "--in-cluster", "--kubeconfig", str(kubeconfig))
    assert missing.returncode == 2 and "--in-cluster needs --sync" in missing.stderr


def test_a_request_made_while_no_operator_ran_is_answered_by_the_next(
    setup: Setup, operator_factory: Any
) -> None:
    """kopf keeps the last handled state in the object: an annotation set while the operator
    was down is an update for the one that starts next (so no resume handler is needed)."""
    ns = setup.namespace
    sha = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")})
    setup.objects()
    first = operator_factory(ns)
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha}",
        timeout=WAIT,
        what="first apply",
    )
    first.stop()
    token = "2026-12-05T10:00:00.000001Z"
    setup.kube.patch(setup.kube.sync_path(), {"metadata": {"annotations": {DIFF_REQUESTED: token}}})
    operator_factory(ns)
    answer = wait_for(
        lambda: (
            (setup.kube.status().get("diff") or {}).get("requestedAt") == token
            and setup.kube.status()["diff"]
        ),
        timeout=WAIT,
        what="the answer of the restarted operator",
    )
    assert answer["objects"] == [] and answer["revision"] == f"main@sha1:{sha}"


def test_in_cluster_diff_substitutes_post_build_variables_as_a_reconcile_does(
    setup: Setup, operator_factory: Any, kubeconfig: Path, tmp_path: Path
) -> None:
    """Computed as the reconcile applies: with the variables substituted, the applied revision
    differs from nothing live (without them, ``${LEVEL}`` would differ from ``info``)."""
    ns = setup.namespace
    sha = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="${LEVEL}")})
    setup.objects(extra_spec={"postBuild": {"substitute": {"LEVEL": "info"}}})
    operator_factory(ns)
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha}",
        timeout=WAIT,
        what="first apply",
    )
    same = _cli(tmp_path, "diff", "--sync", f"{ns}/app", "--in-cluster",
                "--kubeconfig", str(kubeconfig), "--timeout", "2m", "-o", "json")  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout) == []
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"suspend": True}})
    setup.kube.patch(
        setup.kube.sync_path(), {"spec": {"postBuild": {"substitute": {"LEVEL": "debug"}}}}
    )
    changed = _cli(tmp_path, "diff", "--sync", f"{ns}/app", "--in-cluster",
                   "--kubeconfig", str(kubeconfig), "--timeout", "2m", "-o", "json")  # fmt: skip
    assert changed.returncode == 1, changed.stderr
    rows = json.loads(changed.stdout)
    assert [(r["kind"], r["name"], r["action"], r["keys"]) for r in rows] == [
        ("ConfigMap", "settings", "update", None)
    ]


def test_the_answer_is_bounded_and_names_are_identities() -> None:
    """Key names are a tenant's to choose: each is cut and made printable, and the lists and
    the object count are bounded, ``truncated`` saying so. No value reaches the answer."""
    from sealed_gitops.operator.diff_request import MAX_KEY_NAME, MAX_KEYS, MAX_OBJECTS, _listed
    from sealed_gitops.plan import ObjectId

    hostile = "evil\x1b[2J\nforged" + "k" * 400
    values = {f"key-{i:03d}": "dmFsdWU=" for i in range(MAX_KEYS + 20)}
    values[hostile] = "dmFsdWU="
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "a"}}
    desired = {ObjectId("a", "db", "", "Secret"): {**secret, "data": values}}
    listed, truncated = _listed({}, desired, [])
    assert truncated
    (entry,) = listed
    added = entry["keys"]["added"]
    assert len(added) == MAX_KEYS and entry["action"] == "create"
    assert all(len(name) <= MAX_KEY_NAME and name.isprintable() for name in added)
    assert "dmFsdWU=" not in json.dumps(listed)
    many = {
        ObjectId("a", f"cm-{i:03d}", "", "ConfigMap"): {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:03d}"},
        }
        for i in range(MAX_OBJECTS + 5)
    }  # fmt: skip
    listed, truncated = _listed({}, many, [])
    assert truncated and len(listed) == MAX_OBJECTS


def test_keyring_model_sops_and_sealed_in_cluster_exact_keyless_honest(
    setup: Setup, operator_factory: Any, kubeconfig: Path, tmp_path: Path
) -> None:
    """The recommended model: the KeyRing's keys never leave the cluster, so a committer
    re-encrypts a SOPS file whole (a new data key) and reseals one SealedSecret value. The
    operator tells exactly which keys changed; the keyless diff says what ciphertexts can:
    the SOPS file was re-encrypted (values unknown), the sealed ``token`` was sealed anew."""
    from tests.keys_lifecycle.conftest import (
        active,
        create_keyring,
        create_repo_and_sync,
        sealed_secret,
        sops_secret,
        wait_keys,
    )

    ns = setup.namespace
    operator_factory(ns)
    create_keyring(setup.kube.client, ns)
    key = active(wait_keys(setup.kube, ns))
    age, certificate = key["ageRecipient"], key["sealingCertificate"]
    first = setup.push(
        {
            "deploy/db.yaml": sops_secret(age, "db", ns, password=OLD_CANARY, user="u-1x"),
            "deploy/api.yaml": sealed_secret(certificate, "api", ns, token=OLD_CANARY, region="r1"),
        }
    )
    create_repo_and_sync(setup, {"name": "cluster"})
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{first}",
        timeout=WAIT,
        what="first apply",
    )
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"suspend": True}})
    old_api = (setup.repo.path / "deploy" / "api.yaml").read_text()
    new_api = yaml.safe_load(
        sealed_secret(certificate, "api", ns, token=NEW_CANARY, region="r1", zone="z1")
    )
    # As kubeseal --merge-into: the value not given keeps its ciphertext.
    new_api["spec"]["encryptedData"]["region"] = yaml.safe_load(old_api)["spec"]["encryptedData"][
        "region"
    ]
    second = setup.push(
        {
            "deploy/db.yaml": sops_secret(
                age, "db", ns, password=NEW_CANARY, user="u-1x", extra="e-1x"
            ),
            "deploy/api.yaml": yaml.safe_dump(new_api, sort_keys=False),
        }
    )
    wait_for(
        lambda: (
            (setup.kube.repository().get("status") or {}).get("artifact", {}).get("commit")
            == second
        ),
        timeout=WAIT,
        what="the second commit published",
    )
    exact = _cli(tmp_path, "diff", "--sync", f"{ns}/app", "--in-cluster",
                 "--kubeconfig", str(kubeconfig), "--timeout", "2m", "-o", "json")  # fmt: skip
    assert exact.returncode == 1, exact.stderr
    keys = {r["name"]: r["keys"] for r in json.loads(exact.stdout)}
    empty: list[str] = []
    assert keys == {
        "api": {"added": ["zone"], "changed": ["token"], "removed": empty, "unknown": empty},
        "db": {"added": ["extra"], "changed": ["password"], "removed": empty, "unknown": empty},
    }
    keyless = _cli(setup.repo.path, "diff", "deploy", "--sync", f"{ns}/app",
                   "--kubeconfig", str(kubeconfig), "-o", "json")  # fmt: skip
    assert keyless.returncode == 1, keyless.stderr
    rows = {r["name"]: r for r in json.loads(keyless.stdout)}
    assert rows["db"]["note"] == "re-encrypted, values unknown"
    assert rows["db"]["keys"] == {
        "added": ["extra"], "changed": empty, "removed": empty, "unknown": ["password", "user"],
    }  # fmt: skip
    assert rows["api"]["keys"] == {
        "added": ["zone"], "changed": ["token"], "removed": empty, "unknown": empty,
    }  # fmt: skip
    everything = json.dumps([setup.kube.sync(), setup.kube.events()])
    assert OLD_CANARY not in everything and NEW_CANARY not in everything


def test_a_diff_request_token_is_made_printable_before_it_is_echoed() -> None:
    """The annotation is anyone's who may patch the Sync: its value reaches the status and the
    operator's log line, so a newline (a forged log line) or an escape sequence is neutralised."""
    from sealed_gitops.operator.diff_request import MAX_TOKEN, pending_request
    from sealed_gitops.operator.resources import DIFF_REQUESTED

    def sync(token: str, answered: str | None = None) -> dict[str, Any]:
        return {"metadata": {"annotations": {DIFF_REQUESTED: token}},
                "status": {"diff": {"requestedAt": answered}} if answered else {}}  # fmt: skip

    assert pending_request(sync("2026-12-05T10:00:00Z")) == "2026-12-05T10:00:00Z"
    forged = pending_request(sync("x\n2026-12-05 INFO forged line\x1b[2J"))
    assert forged is not None
    assert "\n" not in forged and "\x1b" not in forged
    assert len(pending_request(sync("a" * 10_000)) or "") <= MAX_TOKEN
    # answered once: the printable form is what the status echoes, so it is not asked again
    once = pending_request(sync("x\ny"))
    assert once is not None and pending_request(sync("x\ny", answered=once)) is None
