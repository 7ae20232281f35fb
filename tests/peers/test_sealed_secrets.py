"""Bitnami Sealed Secrets and sealed-gitops exchange sealed values, both ways, on a real API server.

- the real ``kubeseal`` seals with our KeyRing's certificate, and our operator applies the file;
- a SealedSecret ``sealed-gitops seal`` wrote is opened by the real controller, whose key is our
  KeyRing's, taken from a ``keys backup`` file and loaded as docs/migrating-from-sealed-secrets.md
  says (``tls_secret_manifest``);
- the reverse: the controller makes its own key, ``kubeseal`` seals for it, the key is given to our
  KeyRing through ``keys restore`` (our backup format holding the controller's key), and our
  operator opens the file.

The Secret each side makes is compared by keyed hash (conftest ``keyed``), never by value.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.cli.keys_backup import BACKUP_KIND
from sealed_gitops.crypto.sealing_keys import SealingKey, make_certificate, tls_secret_manifest
from sealed_gitops.keys.cluster_keys import ClusterKey
from tests.control_plane.conftest import Kubectl
from tests.keys_lifecycle.conftest import (
    active,
    create_keyring,
    create_repo_and_sync,
    wait_keys,
)
from tests.operator.conftest import ready

from .conftest import (
    Keyed,
    Peers,
    SealedSecretsFactory,
    Setup,
    backup_records,
    secret_digests,
    wait_for,
)

#: A session that finds the peers unbuilt builds them in the first test's set-up (minutes on two
#: cores; `python -m sealed_gitops.testing.peers.build` before pytest avoids that).
pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(900)]

#: The label the controller finds its keys by (pkg/controller: SealedSecretsKeyLabel).
CONTROLLER_KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"


def _values() -> dict[str, bytes]:
    return {"password": secrets.token_urlsafe(24).encode(), "api-token": os.urandom(20)}


def _secret_manifest(name: str, namespace: str, values: dict[str, bytes]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode() for k, v in values.items()},
        }
    )


def kubeseal(peers: Peers, manifest: str, *, cert: str, scope: str, kubeconfig: Path) -> str:
    """The real kubeseal, offline with ``--cert`` (a file or the controller's URL)."""
    result = subprocess.run(
        [str(peers("sealed-secrets").binary("kubeseal")), "--cert", cert, "--scope", scope,
         "--format", "yaml"],
        input=manifest, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    assert result.returncode == 0, f"kubeseal failed: {result.stderr}"
    return result.stdout


def _expected(values: dict[str, bytes], keyed: Keyed) -> dict[str, str]:
    return {k: keyed(v) for k, v in values.items()}


@pytest.mark.parametrize("scope", ["strict", "namespace-wide", "cluster-wide"])
def test_kubeseal_seals_for_our_keyring_and_our_operator_applies_it(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    peers: Peers,
    sealed_secrets_crds: None,
    kubeconfig: Path,
    keyed: Keyed,
    tmp_path: Path,
    scope: str,
) -> None:
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    cert = tmp_path / "cluster.crt"
    cert.write_text(active(wait_keys(setup.kube, ns))["sealingCertificate"])
    values = _values()
    sealed = kubeseal(
        peers, _secret_manifest("db", ns, values), cert=str(cert), scope=scope,
        kubeconfig=kubeconfig,
    )  # fmt: skip
    assert "sealed-gitops.io" not in sealed  # kubeseal's own file, no hint of ours
    setup.push({"deploy/db.yaml": sealed})
    create_repo_and_sync(setup, {"name": "cluster"})
    expected = _expected(values, keyed)
    wait_for(
        lambda: secret_digests(setup.kube.secret("db"), keyed) == expected,
        timeout=90, what=f"the {scope} kubeseal Secret applied by our operator",
    )  # fmt: skip
    assert (setup.kube.secret("db") or {}).get("type") == "Opaque"


def test_bitnami_controller_opens_what_we_sealed_with_our_key_from_a_backup(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    sealed_secrets: SealedSecretsFactory,
    kubectl: Kubectl,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    ours = active(wait_keys(setup.kube, ns))
    record = next(r for r in backup_records(run_cli, ns, tmp_path) if r["state"] == "active")
    key = ClusterKey.from_record(record, source="backup")
    assert key.fingerprint == ours["fingerprint"]
    controller_key = tls_secret_manifest(
        SealingKey(private_key=key.sealing_key, certificate=key.certificate),
        name="sealed-secrets-key-imported", namespace=ns,
    )  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(controller_key))
    cert = tmp_path / "cluster.crt"
    cert.write_text(ours["sealingCertificate"])
    values = {"db": _values(), "api": _values()}
    for name, scope in (("db", "strict"), ("api", "namespace-wide")):
        (tmp_path / f"{name}.yaml").write_text(_secret_manifest(name, ns, values[name]))
        run_cli(["seal", f"{name}.yaml", "--cert", str(cert), "--scope", scope,
                 "-w", f"{name}-sealed.yaml"], cwd=tmp_path)  # fmt: skip

    with sealed_secrets(ns) as controller:
        served = controller.certificate().decode()
        assert served.strip() == ours["sealingCertificate"].strip(), "the controller made a key"
        for name in values:
            kubectl("apply", "-f", str(tmp_path / f"{name}-sealed.yaml"))
        for name, plain in values.items():
            expected = _expected(plain, keyed)
            wait_for(
                lambda n=name, e=expected: secret_digests(setup.kube.secret(n), keyed) == e,  # type: ignore[misc]
                timeout=90, what=f"Secret {name} unsealed by the Bitnami controller",
            )  # fmt: skip
        synced = json.loads(kubectl("get", "sealedsecret", "db", "-n", ns, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in synced["status"]["conditions"]}
        assert conditions.get("Synced") == "True"


def test_our_operator_opens_what_kubeseal_sealed_for_the_controllers_own_key(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    peers: Peers,
    sealed_secrets_crds: None,
    sealed_secrets: SealedSecretsFactory,
    kubectl: Kubectl,
    kubeconfig: Path,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    controller_ns = f"sealed-secrets-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", controller_ns)
    try:
        values = _values()
        with sealed_secrets(controller_ns) as controller:
            sealed = kubeseal(
                peers, _secret_manifest("db", ns, values), cert=f"{controller.url}/v1/cert.pem",
                scope="strict", kubeconfig=kubeconfig,
            )  # fmt: skip
        listed = json.loads(
            kubectl("get", "secret", "-n", controller_ns, "-l", CONTROLLER_KEY_LABEL,
                    "-o", "json").stdout
        )  # fmt: skip
        assert len(listed["items"]) == 1, "the controller made exactly one key"
        tls = listed["items"][0]["data"]
    finally:
        kubectl("delete", "namespace", controller_ns, "--wait=false", check=False)

    # Given that key: our backup format holding the controller's key (with an age identity of
    # its own, as every KeyRing key has one), restored into our KeyRing.
    operator_factory(ns)
    create_keyring(client, ns)
    fresh = active(wait_keys(setup.kube, ns))
    offline = pyrage.x25519.Identity.generate()
    (tmp_path / "offline.txt").write_text(f"{offline}\n")
    document = {
        "kind": BACKUP_KIND,
        "keyring": f"{ns}/cluster",
        "created": "2026-01-01T00:00:00Z",
        "keys": [{
            "state": "active",
            "created": "2026-01-01T00:00:00Z",
            "retired": "",
            "age.agekey": str(pyrage.x25519.Identity.generate()),
            "tls.key": base64.b64decode(tls["tls.key"]).decode(),
            "tls.crt": base64.b64decode(tls["tls.crt"]).decode(),
        }],
    }  # fmt: skip
    backup = tmp_path / "controller-key.age"
    backup.write_bytes(pyrage.encrypt(yaml.safe_dump(document).encode(), [offline.to_public()]))
    run_cli(["keys", "restore", str(backup), "--identity", str(tmp_path / "offline.txt")],
            cwd=tmp_path)  # fmt: skip
    wait_for(lambda: len(wait_keys(setup.kube, ns, count=2)) == 2, what="the restored key")

    setup.push({"deploy/db.yaml": sealed})
    create_repo_and_sync(setup, {"name": "cluster"})
    expected = _expected(values, keyed)
    wait_for(
        lambda: secret_digests(setup.kube.secret("db"), keyed) == expected,
        timeout=90, what="the Secret kubeseal sealed for the controller, applied by our operator",
    )  # fmt: skip
    assert active(wait_keys(setup.kube, ns, count=2))["fingerprint"] != fresh["fingerprint"]


def _shape(secret: dict[str, Any] | None, keyed: Keyed) -> dict[str, Any]:
    """What a Secret's consumer sees: type, data (keyed), and the labels and annotations that
    came from the SealedSecret's template (each system's own bookkeeping left out)."""
    assert secret is not None
    meta = secret["metadata"]

    def mine(key: str) -> bool:
        return not key.startswith(("sealed-gitops.io/", "kubectl.kubernetes.io/"))

    return {
        "type": secret.get("type"),
        "data": secret_digests(secret, keyed),
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if mine(k)},
        "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if mine(k)},
        "immutable": secret.get("immutable"),
    }


def test_one_sealed_secret_makes_the_same_secret_in_bitnamis_controller_and_ours(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    peers: Peers,
    sealed_secrets: SealedSecretsFactory,
    kubectl: Kubectl,
    kubeconfig: Path,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    """A cluster-wide kubeseal file with a typed, labelled, annotated template, applied by the
    controller in one namespace and by our operator in another: the same Secret in both."""
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    ours = active(wait_keys(setup.kube, ns))
    record = next(r for r in backup_records(run_cli, ns, tmp_path) if r["state"] == "active")
    key = ClusterKey.from_record(record, source="backup")
    theirs_ns = f"sealed-secrets-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", theirs_ns)
    try:
        kubectl("apply", "-f", "-", input=json.dumps(tls_secret_manifest(
            SealingKey(private_key=key.sealing_key, certificate=key.certificate),
            name="sealed-secrets-key-imported", namespace=theirs_ns,
        )))  # fmt: skip
        cert = tmp_path / "cluster.crt"
        cert.write_text(ours["sealingCertificate"])
        manifest = yaml.safe_dump({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "login", "namespace": ns,
                         "labels": {"app.kubernetes.io/name": "web", "tier": "back"},
                         "annotations": {"team": "payments", "note": "rotated monthly"}},
            "type": "kubernetes.io/basic-auth",
            "data": {"username": base64.b64encode(b"svc-web").decode(),
                     "password": base64.b64encode(secrets.token_bytes(24)).decode()},
        })  # fmt: skip
        sealed = kubeseal(
            peers, manifest, cert=str(cert), scope="cluster-wide", kubeconfig=kubeconfig
        )
        plain = yaml.safe_load(manifest)
        expected = {k: keyed(base64.b64decode(v)) for k, v in plain["data"].items()}
        with sealed_secrets(theirs_ns):
            kubectl("apply", "-n", theirs_ns, "-f", "-", input=sealed.replace(ns, theirs_ns))
            wait_for(
                lambda: secret_digests(setup.kube.secret("login", theirs_ns), keyed) == expected,
                timeout=90, what="the Secret the Bitnami controller made",
            )  # fmt: skip
            theirs = _shape(setup.kube.secret("login", theirs_ns), keyed)
        assert theirs["type"] == "kubernetes.io/basic-auth"
        assert theirs["labels"]["tier"] == "back" and theirs["annotations"]["team"] == "payments"
        setup.push({"deploy/login.yaml": sealed})
        create_repo_and_sync(setup, {"name": "cluster"})
        wait_for(
            lambda: secret_digests(setup.kube.secret("login"), keyed) == expected,
            timeout=90, what="the Secret our operator made",
        )  # fmt: skip
        assert _shape(setup.kube.secret("login"), keyed) == theirs
    finally:
        kubectl("delete", "namespace", theirs_ns, "--wait=false", check=False)


def test_a_file_we_sealed_and_bitnamis_controller_re_encrypted_opens_in_ours(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    sealed_secrets: SealedSecretsFactory,
    kubectl: Kubectl,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    """``kubeseal --re-encrypt`` (the controller's /v1/rotate) over a file we wrote: the values
    move to the controller's newest key while our key-id hints still name the old one."""
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    old = active(wait_keys(setup.kube, ns))
    cert = tmp_path / "old.crt"
    cert.write_text(old["sealingCertificate"])
    values = _values()
    (tmp_path / "db.yaml").write_text(_secret_manifest("db", ns, values))
    run_cli(["seal", "db.yaml", "--cert", str(cert), "-o", "json", "-w", "sealed.json"],
            cwd=tmp_path)  # fmt: skip
    ours = json.loads((tmp_path / "sealed.json").read_text())
    assert "sealed-gitops.io/key-ids" in ours["metadata"]["annotations"]
    run_cli(["keys", "rotate", "--keyring", f"{ns}/cluster"], cwd=tmp_path)
    new = active(wait_keys(setup.kube, ns, count=2))
    for record in backup_records(run_cli, ns, tmp_path):  # both keys, as a migration would
        key = ClusterKey.from_record(record, source="backup")
        certificate = key.certificate
        if key.fingerprint == old["fingerprint"]:
            # The controller seals with the key whose certificate starts last; the two were made
            # seconds apart, so date the old one back a day to make that order certain.
            certificate = make_certificate(
                key.sealing_key, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            )
        kubectl("apply", "-f", "-", input=json.dumps(tls_secret_manifest(
            SealingKey(private_key=key.sealing_key, certificate=certificate),
            name=f"sealed-secrets-key-{key.fingerprint[:10]}", namespace=ns,
        )))  # fmt: skip
    with sealed_secrets(ns) as controller:
        assert controller.certificate().decode().strip() == new["sealingCertificate"].strip()
        request = urllib.request.Request(  # noqa: S310 (http to loopback)
            f"{controller.url}/v1/rotate", data=json.dumps(ours).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
            rotated = json.loads(answer.read())
    assert rotated["spec"]["encryptedData"] != ours["spec"]["encryptedData"]
    # The endpoint answers the object without its type; kubeseal's encoder writes it back.
    rotated = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", **rotated}
    # The controller moved our hints (now stale: they name the old key) into the template.
    moved = rotated["spec"]["template"]["metadata"].get("annotations") or {}
    assert "sealed-gitops.io/key-ids" in moved
    setup.push({"deploy/db.yaml": yaml.safe_dump(rotated)})
    create_repo_and_sync(setup, {"name": "cluster"})
    expected = _expected(values, keyed)
    try:
        wait_for(
            lambda: secret_digests(setup.kube.secret("db"), keyed) == expected,
            timeout=90, what="the re-encrypted file opened by our operator",
        )  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}; Sync: {ready(setup.kube.sync())}") from exc
    # The stale hints did not stop our operator, and are not copied onto the Secret.
    annotations = (setup.kube.secret("db") or {})["metadata"].get("annotations") or {}
    assert not {"sealed-gitops.io/key-ids", "sealed-gitops.io/scope-sha256"} & set(annotations)
