"""Issue 11, finding 14: what the operator's ServiceAccount may do, as ``deploy/`` installs it.

The review found the installed rights far broader than the operator's work: ``list secrets -A``,
writes of Secrets and workloads in ``kube-system``, and impersonation of any ServiceAccount,
the controllers' own included. A compromised operator (or any bug that lets a tenant steer it, see
finding 1) would then own the cluster. These tests install ``deploy/`` into the emulator with RBAC
enforced and ask the real ``kubectl auth can-i --as=<the operator's account>``: the API server's
own answer, not a reading of the YAML.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.cli.operator_cmds import operator_command
from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.gitserver import WorkRepo
from tests.deploy.conftest import DEPLOY, NAMESPACE, OPERATOR_SA, ROOT, kubectl, kubectl_run
from tests.operator.conftest import wait_for

__all__ = ["kubectl"]  # the session fixture, re-exported so pytest finds it here

AS_OPERATOR = f"--as=system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"
#: a namespace that exists but that no admin handed to sealed-gitops
STRANGER = "team-stranger"
#: a namespace an admin handed over with ``kubectl apply -n TENANT -k deploy/tenant``
TENANT = "team-handed-over"
DEPLOYER = "sealed-gitops-deployer"
PERMISSIONS = ROOT / "docs" / "permissions.md"


@pytest.fixture(scope="module")
def emulator(kubectl: Path) -> Iterator[KubeEmulator]:
    """A fresh RBAC-enforcing emulator with ``deploy/`` applied and TENANT handed over."""
    with KubeEmulator(rbac=True).run_in_thread() as api:
        config = api.kubeconfig_path
        kubectl_run(kubectl, config, "apply", "--server-side", "-k", str(DEPLOY))
        kubectl_run(kubectl, config, "create", "namespace", STRANGER)
        kubectl_run(kubectl, config, "create", "namespace", TENANT)
        tenant = DEPLOY / "tenant"
        kubectl_run(kubectl, config, "apply", "--server-side", "-n", TENANT, "-k", str(tenant))
        yield api


@pytest.fixture(scope="module")
def installed(emulator: KubeEmulator) -> Path:
    """The admin kubeconfig of that emulator."""
    return emulator.kubeconfig_path


def can_i(kubectl: Path, config: Path, *args: str, who: str = AS_OPERATOR) -> bool:
    """``kubectl auth can-i ARGS --as=WHO``: True for yes, False for no, anything else fails."""
    done = kubectl_run(kubectl, config, "auth", "can-i", *args, who, check=False)
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), (done.stdout, done.stderr)
    assert done.returncode == (0 if answer == "yes" else 1), done.stderr
    return answer == "yes"


# -- the breadth the review found; each of these answered "yes" before the fix -----------------


@pytest.mark.parametrize("verb", ["list", "watch", "get"])
def test_operator_cannot_read_secrets_in_every_namespace(
    installed: Path, kubectl: Path, verb: str
) -> None:
    assert not can_i(kubectl, installed, verb, "secrets", "--all-namespaces")


@pytest.mark.parametrize("verb", ["get", "list"])
def test_operator_cannot_read_secrets_of_a_namespace_never_handed_over(
    installed: Path, kubectl: Path, verb: str
) -> None:
    assert not can_i(kubectl, installed, verb, "secrets", "-n", STRANGER)
    assert not can_i(kubectl, installed, verb, "secrets", "-n", "kube-system")


@pytest.mark.parametrize(
    "resource",
    [
        "secrets",
        "configmaps",
        "serviceaccounts",
        "daemonsets.apps",
        "deployments.apps",
        "statefulsets.apps",
        "cronjobs.batch",
        "jobs.batch",
    ],
)
@pytest.mark.parametrize("verb", ["create", "patch", "delete"])
@pytest.mark.parametrize("namespace", ["kube-system", STRANGER])
def test_operator_cannot_write_workloads_or_secrets_elsewhere(
    installed: Path, kubectl: Path, verb: str, resource: str, namespace: str
) -> None:
    assert not can_i(kubectl, installed, verb, resource, "-n", namespace)


@pytest.mark.parametrize("verb", ["create", "patch", "delete"])
@pytest.mark.parametrize("resource", ["configmaps", "deployments.apps", "secrets"])
def test_operator_cannot_write_anything_cluster_wide(
    installed: Path, kubectl: Path, verb: str, resource: str
) -> None:
    assert not can_i(kubectl, installed, verb, resource, "--all-namespaces")


@pytest.mark.parametrize(
    "account",
    [
        "namespace-controller",
        "clusterrole-aggregation-controller",
        "daemon-set-controller",
        "generic-garbage-collector",
        "replicaset-controller",
        "default",
    ],
)
def test_operator_cannot_impersonate_kube_system_accounts(
    installed: Path, kubectl: Path, account: str
) -> None:
    assert not can_i(
        kubectl, installed, "impersonate", f"serviceaccounts/{account}", "-n", "kube-system"
    )


def test_operator_cannot_impersonate_accounts_of_a_namespace_never_handed_over(
    installed: Path, kubectl: Path
) -> None:
    assert not can_i(kubectl, installed, "impersonate", "serviceaccounts", "-n", STRANGER)
    assert not can_i(kubectl, installed, "impersonate", "serviceaccounts", "--all-namespaces")


@pytest.mark.parametrize("resource", ["users", "groups", "uids.authentication.k8s.io"])
def test_operator_cannot_impersonate_users_or_groups(
    installed: Path, kubectl: Path, resource: str
) -> None:
    assert not can_i(kubectl, installed, "impersonate", resource)


# -- what remains, as docs/permissions.md tells it: every line asked of the API server ---------


def _table(heading: str) -> list[tuple[str, str, str]]:
    """(verb, resource, where) for every verb and resource of one table of permissions.md."""
    text = PERMISSIONS.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str, str]] = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("verb", "---"):
            continue
        verbs = [v.strip() for v in cells[0].split(",")]
        resources = re.findall(r"`([^`]+)`", cells[1])
        assert verbs and resources, line
        rows += [(verb, resource, cells[2]) for verb in verbs for resource in resources]
    assert rows, f"no table under {heading!r} in {PERMISSIONS}"
    return rows


def _where(where: str) -> list[str]:
    places = {
        "all namespaces": ["--all-namespaces"],
        "cluster": [],
        NAMESPACE: ["-n", NAMESPACE],
        "handed-over namespaces": ["-n", TENANT],
        "kube-system": ["-n", "kube-system"],
    }
    assert where in places, f"unknown place {where!r} in {PERMISSIONS}"
    return places[where]


@pytest.mark.parametrize(("verb", "resource", "where"), _table("Held"))
def test_every_right_in_the_table_is_held(
    installed: Path, kubectl: Path, verb: str, resource: str, where: str
) -> None:
    assert can_i(kubectl, installed, verb, resource, *_where(where))


@pytest.mark.parametrize(("verb", "resource", "where"), _table("Not held"))
def test_every_right_the_table_denies_is_denied(
    installed: Path, kubectl: Path, verb: str, resource: str, where: str
) -> None:
    assert not can_i(kubectl, installed, verb, resource, *_where(where))


def test_the_table_names_every_rule_deploy_grants_the_operator(kubectl: Path) -> None:
    """No right in deploy/ that the table does not explain: every (verb, resource) of a role
    bound to the operator appears in the Held table."""

    done = kubectl_run(kubectl, Path("/dev/null"), "kustomize", str(DEPLOY))
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    tenant = kubectl_run(kubectl, Path("/dev/null"), "kustomize", str(DEPLOY / "tenant"))
    docs += [d for d in yaml.safe_load_all(tenant.stdout) if d]
    roles = {
        (d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Role", "ClusterRole")
    }
    bound = [
        roles[(d["roleRef"]["kind"], d["roleRef"]["name"])]
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}
        in d.get("subjects", [])
    ]
    held = {(verb, resource) for verb, resource, _ in _table("Held")}
    granted = {
        (verb, f"{resource}.{group}" if group else resource)
        for role in bound
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # the table writes a subresource after its kind's full name: syncs.sealed-gitops.io/status
    normalised = {
        (verb, re.sub(r"^([^/.]+)/([^.]+)\.(.+)$", r"\1.\3/\2", resource))
        for verb, resource in granted
    }
    assert normalised == held


# -- the deployer account of a handed-over namespace: writes there, and nowhere else -----------


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (("create", "configmaps", "-n", TENANT), True),
        (("delete", "deployments.apps", "-n", TENANT), True),
        (("create", "configmaps", "-n", "kube-system"), False),
        (("create", "secrets", "-n", STRANGER), False),
        (("create", "rolebindings.rbac.authorization.k8s.io", "-n", TENANT), False),
        (("create", "pods", "-n", TENANT), False),
        (("create", "namespaces"), False),
    ],
)
def test_the_deployer_account_writes_only_in_its_namespace(
    installed: Path, kubectl: Path, args: tuple[str, ...], allowed: bool
) -> None:
    who = f"--as=system:serviceaccount:{TENANT}:{DEPLOYER}"
    assert can_i(kubectl, installed, *args, who=who) is allowed


# -- the operator itself, as its ServiceAccount, with the arguments deploy/ gives it -----------


def _request(client: KubeClient, method: str, path: str, body: Any = None) -> Any:
    return client.request(method, path, body=body, action=method.lower(), what=path)


def _get(client: KubeClient, path: str) -> Any:
    try:
        return _request(client, "GET", path)
    except ApiNotFound:
        return None


def _ready(client: KubeClient, namespace: str, name: str, *, says: str) -> dict[str, Any] | None:
    """The Sync's Ready condition once its message holds ``says`` (earlier ones are passing
    states: the Repository not fetched yet, the first reconcile running)."""
    sync = _get(client, f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}/syncs/{name}")
    for cond in ((sync or {}).get("status") or {}).get("conditions") or ():
        if cond["type"] == "Ready" and says in str(cond.get("message", "")):
            return dict(cond)
    return None


def _deployed_default_account(kubectl: Path) -> str | None:
    """``--default-service-account`` as deploy/deployment.yaml passes it to the CLI."""
    done = kubectl_run(kubectl, Path("/dev/null"), "kustomize", str(DEPLOY))
    deployment = next(d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    params = operator_command.make_context("operator", list(args[1:])).params
    return params["default_service_account"]  # type: ignore[no-any-return]


def test_deploy_sets_a_default_service_account(kubectl: Path) -> None:
    assert _deployed_default_account(kubectl) == DEPLOYER


def test_a_sync_without_service_account_writes_as_the_deployer_and_never_in_kube_system(
    emulator: KubeEmulator, kubectl: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the fix the same Syncs were written with the operator's own, cluster-wide rights:
    the one in a namespace whose deployer has no rights succeeded, and the one in kube-system
    wrote its ConfigMap there."""
    admin = connect(emulator.kubeconfig_path)
    token = _request(
        admin,
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{OPERATOR_SA}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    operator_config = emulator.write_kubeconfig(tmp_path / "operator.kubeconfig", token=token)

    # "stripped": handed over, but the admin took the deployer's rights away again
    stripped = "team-stripped"
    kubectl_run(kubectl, emulator.kubeconfig_path, "create", "namespace", stripped)
    kubectl_run(
        kubectl, emulator.kubeconfig_path, "apply", "--server-side", "-n", stripped,
        "-k", str(DEPLOY / "tenant"),
    )  # fmt: skip
    kubectl_run(
        kubectl, emulator.kubeconfig_path, "delete", "rolebinding", DEPLOYER, "-n", stripped
    )

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = WorkRepo(tmp_path / "work", remote=remote)
    repo.write(
        {"app/cm.yaml": yaml.safe_dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "canary"},
             "data": {"written": "yes"}}
        )}
    )  # fmt: skip
    repo.commit("first")
    repo.push()
    namespaces = (TENANT, stripped, "kube-system")
    for namespace in namespaces:
        crs = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}"
        _request(admin, "POST", f"{crs}/repositories", {
            "apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Repository",
            "metadata": {"name": "app"},
            "spec": {"url": f"file://{remote}", "ref": {"branch": "main"}, "interval": "1s"},
        })  # fmt: skip
        _request(admin, "POST", f"{crs}/syncs", {
            "apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Sync",
            "metadata": {"name": "app"},
            "spec": {"repositoryRef": {"name": "app"}, "path": "./app", "interval": "1s",
                     "retryInterval": "1s"},
        })  # fmt: skip

    settings = OperatorSettings(
        namespaces=list(namespaces),
        kubeconfig=str(operator_config),
        cache_dir=tmp_path / "cache",
        metrics_port=None,
        webhook_port=None,
        allowed_schemes=frozenset({"file"}),
        leader_lease=None,
        min_backoff=0.5,
        max_backoff=1.0,
        default_service_account=_deployed_default_account(kubectl),
    )
    try:
        with OperatorThread(settings):
            ok = wait_for(lambda: _ready(admin, TENANT, "app", says="Applied revision"), what="ok")
            assert ok["status"] == "True", ok
            live = _get(admin, f"/api/v1/namespaces/{TENANT}/configmaps/canary")
            assert live["data"] == {"written": "yes"}

            who = f"system:serviceaccount:{stripped}:{DEPLOYER}"
            refused = wait_for(lambda: _ready(admin, stripped, "app", says=who), what="refused")
            assert refused["status"] == "False", refused
            assert "forbidden" in refused["message"], refused
            assert _get(admin, f"/api/v1/namespaces/{stripped}/configmaps/canary") is None

            system = wait_for(
                lambda: _ready(admin, "kube-system", "app", says="never acts as"), what="refused"
            )
            assert system["status"] == "False", system
            assert system["reason"] == "AccessDenied", system
            assert _get(admin, "/api/v1/namespaces/kube-system/configmaps/canary") is None
    finally:
        admin.close()
    # and the operator's own requests (kopf's watches included) needed no right it lacks
    denied = [r.getMessage() for r in caplog.records if "APIForbiddenError" in r.getMessage()]
    assert denied == []
