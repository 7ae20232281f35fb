"""Switching a live namespace from a peer to our operator, as the migration guides say to.

"Do my existing objects keep working if I switch?": the peer has already made the Secrets, then
our operator takes the same files over in the same namespace.

- Flux (docs/migrating-from-flux.md, "Hand over"): suspend the Kustomization, create the Sync,
  wait for it, delete the Kustomization. The Secrets never change value or disappear, become ours
  (our labels), and our prune then removes what leaves Git.
- Sealed Secrets: the controller made the Secret (owned by its SealedSecret); our operator applies
  the same kubeseal file from Git; then Sealed Secrets is removed (its SealedSecret deleted, as an
  uninstall does) and the Secret must be the same object, with the same values, afterwards.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.cluster.ownership import SYNC_NAME_LABEL
from sealed_gitops.crypto.sealing_keys import SealingKey, tls_secret_manifest
from sealed_gitops.keys.cluster_keys import ClusterKey
from sealed_gitops.testing.gitserver import HttpGitServer
from sealed_gitops.testing.peers.processes import FluxController
from tests.control_plane.conftest import Kubectl
from tests.keys_lifecycle.conftest import active, create_keyring, create_repo_and_sync, wait_keys
from tests.operator.conftest import is_ready

from .conftest import (
    Keyed,
    Peers,
    SealedSecretsFactory,
    Setup,
    backup_records,
    secret_digests,
    wait_for,
)
from .test_flux_sops import flux_objects, flux_state
from .test_sealed_secrets import kubeseal

#: A session that finds the peers unbuilt builds them in the first test's set-up.
pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(900)]


def _secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "stringData": values}  # fmt: skip


def test_flux_handover_keeps_every_secret_and_our_prune_takes_over(
    setup: Setup,
    flux: tuple[FluxController, FluxController],
    operator_factory: Any,
    kubectl: Kubectl,
    keyed: Keyed,
) -> None:
    ns = setup.namespace
    values = {n: {"password": secrets.token_urlsafe(18)} for n in ("db", "api")}
    files = {f"deploy/{n}.yaml": setup.encrypt(_secret(n, v)) for n, v in values.items()}
    kustomization = {"resources": [f"{n}.yaml" for n in values]}
    setup.push({**files, "deploy/kustomization.yaml": yaml.safe_dump(kustomization)})
    expected = {n: {k: keyed(v.encode()) for k, v in vs.items()} for n, vs in values.items()}

    def digests() -> dict[str, Any]:
        return {n: secret_digests(setup.kube.secret(n), keyed) for n in values}

    server = HttpGitServer(setup.remote.parent).start()
    try:
        url = server.url(setup.remote.name)
        kubectl("apply", "-f", "-", input=flux_objects(ns, url, setup.age_secret))
        try:
            wait_for(lambda: digests() == expected, timeout=180, what="Flux's Secrets")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; Flux: {flux_state(kubectl, ns)}") from exc

        # 1. suspend Flux; 2.-3. our Repository and Sync, and wait for them
        kubectl("patch", "kustomization", "app", "-n", ns, "--type=merge",
                "-p", '{"spec":{"suspend":true}}')  # fmt: skip
        operator_factory(ns)
        setup.objects(repository_spec={"url": url})
        wait_for(lambda: is_ready(setup.kube.sync()), timeout=120, what="the Sync Ready")
        for name in values:
            labels = (setup.kube.secret(name) or {}).get("metadata", {}).get("labels") or {}
            assert labels.get(SYNC_NAME_LABEL) == "app", f"{name} was not taken over"
        assert digests() == expected

        # 4. delete the suspended Kustomization: its objects stay
        kubectl("delete", "kustomization", "app", "-n", ns, "--wait=true", "--timeout=60s")
        kubectl("delete", "gitrepository", "app", "-n", ns, "--wait=true", "--timeout=60s")
        time.sleep(2)  # give a wrongly pruning finalizer time to act before looking
        assert digests() == expected

        # from now on our operator prunes what leaves Git
        (setup.repo.path / "deploy/api.yaml").unlink()
        setup.push({"deploy/kustomization.yaml": yaml.safe_dump({"resources": ["db.yaml"]})})
        wait_for(lambda: setup.kube.secret("api") is None, timeout=120, what="api pruned by us")
        assert digests()["db"] == expected["db"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    "cascade",
    [
        # What docs/migrating-from-sealed-secrets.md says to do: orphan the Secrets.
        "orphan",
        # A plain uninstall: the garbage collector follows owner references. Our apply drops the
        # controller's owner reference when it takes a Secret over (cluster/handover.py).
        "background",
    ],
)
def test_sealed_secrets_handover_keeps_the_secret_after_bitnami_is_removed(
    cascade: str,
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
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    ours = active(wait_keys(setup.kube, ns))
    record = next(r for r in backup_records(run_cli, ns, tmp_path) if r["state"] == "active")
    key = ClusterKey.from_record(record, source="backup")
    kubectl("apply", "-f", "-", input=json.dumps(tls_secret_manifest(
        SealingKey(private_key=key.sealing_key, certificate=key.certificate),
        name="sealed-secrets-key-imported", namespace=ns,
    )))  # fmt: skip
    cert = tmp_path / "cluster.crt"
    cert.write_text(ours["sealingCertificate"])
    value = secrets.token_bytes(24)
    manifest = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
        "type": "Opaque", "data": {"password": base64.b64encode(value).decode()},
    })  # fmt: skip
    sealed = kubeseal(peers, manifest, cert=str(cert), scope="strict", kubeconfig=kubeconfig)
    expected = {"password": keyed(value)}

    def current() -> dict[str, str] | None:
        return secret_digests(setup.kube.secret("db"), keyed)

    with sealed_secrets(ns):
        kubectl("apply", "-f", "-", input=sealed)
        wait_for(lambda: current() == expected, timeout=90, what="the controller's Secret")
        owners = (setup.kube.secret("db") or {})["metadata"].get("ownerReferences") or []
        assert [o["kind"] for o in owners] == ["SealedSecret"]

        # our operator takes the same file over while the controller still runs
        setup.push({"deploy/db.yaml": sealed})
        create_repo_and_sync(setup, {"name": "cluster"})
        wait_for(lambda: is_ready(setup.kube.sync()), timeout=120, what="the Sync Ready")
        assert current() == expected

    # Sealed Secrets uninstalled: its SealedSecret goes; the garbage collector follows owners.
    before = (setup.kube.secret("db") or {})["metadata"]["uid"]
    kubectl("delete", "sealedsecret", "db", "-n", ns, f"--cascade={cascade}", "--wait=true",
            "--timeout=60s")  # fmt: skip
    time.sleep(3)  # the garbage collector acts within a second or two on an idle control plane
    wait_for(lambda: current() == expected, timeout=60, what="the Secret after the uninstall")
    after = (setup.kube.secret("db") or {})["metadata"]
    assert after["uid"] == before, "the Secret was deleted (and made again): consumers saw a gap"
    assert not after.get("ownerReferences")
