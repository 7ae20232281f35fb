"""Issue 12, Must 6: ``sealed-gitops import flux`` turns Flux objects into Repository and Sync.

From files (both API versions Flux serves, multi-document and List files) and from a cluster that
serves Flux's CRDs; every field either carried over or named on stderr and in ``--output json``;
bad input named by file and document. End to end: a Flux + SOPS repository (files encrypted by the
real sops), its Flux objects in the cluster, imported, applied, and reconciled by our operator
with the same decryption Secret: nothing re-encrypted.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.flux_import import convert
from sealed_gitops.cli.import_cmds import flux_objects_from_cluster
from sealed_gitops.cli.main import cli
from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiConflict, ApiNotFound
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.plan.names import InvalidName
from tests.operator.conftest import (
    Setup,
    decoded,
    is_ready,
    wait_for,
)

SOURCE_VERSIONS = ["source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2"]
KUSTOMIZE_VERSIONS = ["kustomize.toolkit.fluxcd.io/v1", "kustomize.toolkit.fluxcd.io/v1beta2"]


def git_repository(api: str = SOURCE_VERSIONS[0], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "flux-system", "labels": {"team": "a"}},
        "spec": {"url": "ssh://git@git.example.com/org/app.git", **spec},
    }


def kustomization(api: str = KUSTOMIZE_VERSIONS[0], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "app"}, **spec},
    }


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["import", "flux", *args], catch_exceptions=False)


def write_docs(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


# -- from files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_api", "kustomize_api"), list(zip(SOURCE_VERSIONS, KUSTOMIZE_VERSIONS, strict=True))
)
def test_every_field_with_a_counterpart_carries_over(
    tmp_path: Path, source_api: str, kustomize_api: str
) -> None:
    flux = write_docs(
        tmp_path / "flux.yaml",
        git_repository(
            source_api,
            interval="1m0s",
            timeout="90s",
            ref={"branch": "main"},
            secretRef={"name": "git-auth"},
            verify={"mode": "HEAD", "secretRef": {"name": "signers"}},
            suspend=True,
        ),
        kustomization(
            kustomize_api,
            path="./clusters/prod",
            interval="10m",
            retryInterval="2m",
            prune=True,
            targetNamespace="apps",
            serviceAccountName="deployer",
            suspend=True,
            decryption={"provider": "sops", "secretRef": {"name": "sops-keys"}},
        ),
    )
    result = run("-f", str(flux))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # everything carried over: nothing to say
    repository, sync = yaml.safe_load_all(result.stdout)
    assert repository == {
        "apiVersion": "sealed-gitops.io/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "app", "namespace": "flux-system", "labels": {"team": "a"}},
        "spec": {
            "url": "ssh://git@git.example.com/org/app.git",
            "ref": {"branch": "main"},
            "interval": "1m0s",
            "timeout": "90s",
            "secretRef": {"name": "git-auth"},
            "verify": {"mode": "HEAD", "secretRef": {"name": "signers"}},
            "suspend": True,
        },
    }
    assert sync == {
        "apiVersion": "sealed-gitops.io/v1alpha1",
        "kind": "Sync",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {
            "repositoryRef": {"name": "app"},
            "path": "./clusters/prod",
            "interval": "10m",
            "retryInterval": "2m",
            "prune": True,
            "targetNamespace": "apps",
            "serviceAccountName": "deployer",
            "suspend": True,
            "decryption": {"secretRef": {"name": "sops-keys"}},
        },
    }


@pytest.mark.parametrize(
    ("ref", "expected", "note"),
    [
        ({"branch": "main"}, {"branch": "main"}, None),
        ({"tag": "v1.2.3"}, {"tag": "v1.2.3"}, None),
        ({"semver": ">=1.0.0 <2.0.0"}, {"semver": ">=1.0.0 <2.0.0"}, None),
        (
            {"commit": "0123456789abcdef0123456789abcdef01234567"},
            {"commit": "0123456789abcdef0123456789abcdef01234567"},
            None,
        ),
        # Flux's precedence: commit over branch, semver over tag over branch
        ({"branch": "main", "commit": "abcdef1"}, {"commit": "abcdef1"}, "spec.ref.branch"),
        ({"branch": "main", "tag": "v1", "semver": "~1"}, {"semver": "~1"}, None),
        ({"name": "refs/heads/release"}, {"branch": "release"}, None),
        ({"name": "refs/tags/v2.0.0"}, {"tag": "v2.0.0"}, None),
        ({"name": "refs/pull/420/head"}, None, "spec.ref.name"),
    ],
)
def test_each_kind_of_ref(
    ref: dict[str, str], expected: dict[str, str] | None, note: str | None
) -> None:
    conversion = convert([("f.yaml, document 0", git_repository(ref=ref))])
    (repository,) = conversion.items
    assert repository["spec"].get("ref") == expected
    assert [n.field for n in conversion.not_carried] == ([note] if note else [])


def test_fields_without_counterpart_are_named_per_object_and_field(tmp_path: Path) -> None:
    flux = write_docs(
        tmp_path / "flux.yaml",
        git_repository(
            ignore="/*\n!/deploy",
            recurseSubmodules=True,
            verify={"mode": "TagAndHEAD", "secretRef": {"name": "signers"}},
        ),
        kustomization(
            prune=False,
            dependsOn=[{"name": "infra"}],
            healthChecks=[{"kind": "Deployment", "name": "web", "namespace": "apps"}],
            wait=True,
            timeout="5m",
            force=False,  # asks for nothing: not reported
            patches=[{"patch": "- op: remove\n  path: /spec/replicas"}],
            images=[{"name": "web", "newTag": "1.2"}],
            components=["../components/x"],
            postBuild={"substitute": {"cluster_env": "prod-canary-value"}},
            kubeConfig={"secretRef": {"name": "remote"}},
            someFutureField={"x": 1},
            decryption={"provider": "sops"},
        ),
    )
    result = run("-f", str(flux))
    assert result.exit_code == 0, result.output
    warned = {
        line.split(": ")[2].split(" cannot carry over")[0] for line in result.stderr.splitlines()
    }
    assert warned == {
        "spec.ignore",
        "spec.recurseSubmodules",
        "spec.verify.mode",
        "spec.healthChecks[0]",  # no apiVersion; dependsOn, wait, timeout, postBuild and
        "spec.patches",  # kubeConfig carry over (tests/flux/test_import_sync_fields.py)
        "spec.images",
        "spec.components",
        "spec.someFutureField",
        "spec.decryption",
    }
    assert all(
        line.startswith(
            ("warning: GitRepository flux-system/app: ", "warning: Kustomization flux-system/app: ")
        )
        for line in result.stderr.splitlines()
    )
    # warnings name fields, never values (postBuild may hold anything); the Sync carries it
    assert "prod-canary-value" not in result.stderr
    repository, sync = yaml.safe_load_all(result.stdout)
    # TagAndHEAD keeps a commit signature check rather than none
    assert repository["spec"]["verify"] == {"mode": "HEAD", "secretRef": {"name": "signers"}}
    assert sync["spec"]["prune"] is False  # written even when false: our default is true
    assert "decryption" not in sync["spec"]

    as_json = json.loads(run("-f", str(flux), "--output", "json").stdout)
    assert [item["kind"] for item in as_json["items"]] == ["Repository", "Sync"]
    listed = {(n["kind"], n["namespace"], n["name"], n["field"]) for n in as_json["notCarriedOver"]}
    assert ("Kustomization", "flux-system", "app", "spec.patches") in listed
    assert len(listed) == len(warned)
    assert all(n["reason"] for n in as_json["notCarriedOver"])


def test_a_kustomization_of_another_source_kind_is_not_converted_and_said() -> None:
    obj = kustomization()
    obj["spec"]["sourceRef"] = {"kind": "OCIRepository", "name": "app"}
    conversion = convert([("f.yaml, document 0", obj)])
    assert conversion.items == []
    (note,) = conversion.not_carried
    assert note.field == "spec.sourceRef.kind" and "OCIRepository" in note.reason


def test_a_cross_namespace_source_is_said(tmp_path: Path) -> None:
    obj = kustomization()
    obj["spec"]["sourceRef"]["namespace"] = "shared"
    conversion = convert([("f.yaml, document 0", obj)])
    (sync,) = conversion.items
    assert sync["spec"]["repositoryRef"] == {"name": "app"}
    (note,) = conversion.not_carried
    assert note.field == "spec.sourceRef.namespace" and "shared/app" in note.reason


def test_lists_several_files_and_the_default_namespace(tmp_path: Path) -> None:
    repo = git_repository()
    del repo["metadata"]["namespace"]
    listed = write_docs(
        tmp_path / "list.yaml", {"apiVersion": "v1", "kind": "List", "items": [repo]}
    )
    other = write_docs(
        tmp_path / "other.yaml",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        kustomization(),
    )
    out = tmp_path / "out" / "sealed.yaml"
    out.parent.mkdir()
    result = run("-f", str(listed), "-f", str(other), "-n", "team-a", "-w", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    docs = list(yaml.safe_load_all(out.read_text()))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [
        ("Repository", "team-a"),
        ("Sync", "flux-system"),
    ]


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        (["just a string"], "document 0: not a Kubernetes object"),
        (
            [{"apiVersion": "source.toolkit.fluxcd.io/v1beta1", "kind": "GitRepository"}],
            "document 0: apiVersion 'source.toolkit.fluxcd.io/v1beta1' is not read",
        ),
        (
            [git_repository(), git_repository(interval="1d")],
            "document 1: GitRepository flux-system/app: spec.interval: '1d' is not a duration",
        ),
        (
            [kustomization(targetNamespace="../kube-system")],
            "document 0: Kustomization flux-system/app: spec.targetNamespace: '../kube-system'",
        ),
        (
            [{**git_repository(), "metadata": {"name": "Bad_Name"}}],
            "document 0: metadata.name: 'Bad_Name' is not a valid object name",
        ),
        ([git_repository(url=None)], "document 0: GitRepository flux-system/app: spec.url is"),
        ([kustomization(prune="yes")], "spec.prune must be true or false"),
        ([git_repository(ref={"commit": "main"})], "'main' is not a commit id"),
    ],
)
def test_bad_input_names_the_file_and_document(
    tmp_path: Path, docs: list[Any], message: str
) -> None:
    flux = write_docs(tmp_path / "bad.yaml", *docs)
    result = run("-f", str(flux))
    assert result.exit_code == 1
    assert str(flux) in result.stderr and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    flux = tmp_path / "broken.yaml"
    flux.write_text("apiVersion: v1\nkind: [unclosed\n", encoding="utf-8")
    result = run("-f", str(flux))
    assert result.exit_code == 1 and "broken.yaml" in result.stderr
    assert "Traceback" not in result.output


def test_a_file_without_flux_objects_is_an_error(tmp_path: Path) -> None:
    plain = write_docs(
        tmp_path / "plain.yaml",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    )
    result = run("-f", str(plain))
    assert result.exit_code == 1 and "no Flux GitRepository or Kustomization" in result.stderr


def test_files_and_cluster_are_exclusive(tmp_path: Path) -> None:
    assert run().exit_code == 2
    flux = write_docs(tmp_path / "f.yaml", git_repository())
    assert run("-f", str(flux), "--from-cluster").exit_code == 2


# -- from the cluster, and end to end ----------------------------------------------------------


def flux_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A minimal CRD of a Flux kind (test data; the real ones carry the full schema)."""
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": schema},
                {"name": "v1beta2", "served": True, "storage": False, "schema": schema},
            ],
        },
    }


@pytest.fixture
def flux_crds(client: KubeClient) -> None:
    for group, kind, plural in (
        ("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations"),
    ):
        crd = flux_crd(group, kind, plural)
        # created already by an earlier test of this session: that one serves as well
        with contextlib.suppress(ApiConflict):
            client.request(
                "POST",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                body=crd,
                action="create",
                what=kind,
            )
    wait_for(lambda: _served(client), what="Flux CRDs served")


def _served(client: KubeClient) -> bool:
    try:
        client.request(
            "GET",
            "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
            action="list",
            what="kustomizations",
        )
        client.request(
            "GET",
            "/apis/source.toolkit.fluxcd.io/v1/gitrepositories",
            action="list",
            what="gitrepositories",
        )
    except Exception:
        return False
    return True


def create(client: KubeClient, obj: dict[str, Any]) -> None:
    group_version = obj["apiVersion"]
    plural = {
        "GitRepository": "gitrepositories",
        "Kustomization": "kustomizations",
        "Repository": "repositories",
        "Sync": "syncs",
    }[obj["kind"]]
    ns = obj["metadata"]["namespace"]
    client.request(
        "POST",
        f"/apis/{group_version}/namespaces/{ns}/{plural}",
        body=obj,
        action="create",
        what=obj["kind"],
    )


SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: {value}
"""


def test_from_the_cluster_then_reconciled_by_our_operator(
    setup: Setup,
    flux_crds: None,
    client: KubeClient,
    kubeconfig: Path,
    sops_binary: str,
    sops_env: dict[str, str],
    operator_factory: Callable[..., OperatorThread],
) -> None:
    ns = setup.namespace
    canary = "flux-import-canary-5d2e"
    # A Flux + SOPS repository: a Secret encrypted by the real sops with Flux's usual rules.
    secret = setup.repo.path / "deploy" / "secret.yaml"
    secret.parent.mkdir(parents=True)
    secret.write_text(SECRET.format(value=canary), encoding="utf-8")
    (setup.repo.path / "deploy" / "kustomization.yaml").write_text(
        "resources:\n- secret.yaml\n",
        encoding="utf-8",
    )
    subprocess.run(
        [
            sops_binary,
            "encrypt",
            "--age",
            setup.recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
            "--in-place",
            str(secret),
        ],
        check=True,
        capture_output=True,
        env=sops_env,
        timeout=60,
    )
    assert canary not in secret.read_text()
    setup.push({})
    # Flux's decryption Secret, as Flux documents it (entry name *.agekey).
    setup.secret_object("sops-age", {"age.agekey": setup.age_secret})
    # The Flux objects, in the cluster in both API versions' shape.
    repo = git_repository(
        "source.toolkit.fluxcd.io/v1beta2",
        interval="1s",
        url=f"file://{setup.remote}",
        ref={"branch": "main"},
    )
    repo["metadata"] = {"name": "app", "namespace": ns}
    create(client, repo)
    flux_kustomization = kustomization(
        interval="1s",
        retryInterval="1s",
        path="./deploy",
        prune=True,
        wait=True,
        decryption={"provider": "sops", "secretRef": {"name": "sops-age"}},
    )
    flux_kustomization["metadata"] = {"name": "app", "namespace": ns}
    create(client, flux_kustomization)

    result = CliRunner().invoke(
        cli,
        ["import", "flux", "--from-cluster", "--kubeconfig", str(kubeconfig), "-n", ns],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == ""  # wait: true carries over (a Sync waits for health)
    imported = list(yaml.safe_load_all(result.stdout))
    assert [o["kind"] for o in imported] == ["Repository", "Sync"]
    assert imported[1]["spec"]["wait"] is True
    for obj in imported:  # accepted by our CRDs as they are
        create(client, obj)

    operator_factory(ns)
    found = wait_for(lambda: setup.kube.secret("db"), timeout=60, what="Secret db")
    assert decoded(found) == {"password": canary}
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=60, what="Sync Ready")
    # nothing was re-encrypted: the file in Git is the one sops wrote
    assert (
        subprocess.run(
            ["git", "-C", str(setup.repo.path), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        == ""
    )


class _OnlyV1beta2:
    """A client of a cluster whose Flux serves only v1beta2 (the project's own client seam)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.paths.append(path)
        if "/v1/" in path:
            raise ApiNotFound("the server could not find the requested resource")
        item = git_repository() if "gitrepositories" in path else kustomization()
        return {"items": [{k: v for k, v in item.items() if k not in ("apiVersion", "kind")}]}


def test_from_a_cluster_that_serves_only_v1beta2() -> None:
    fake = _OnlyV1beta2()
    found = list(flux_objects_from_cluster(fake, namespace="flux-system"))  # type: ignore[arg-type]
    assert fake.paths == [
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
        "/apis/source.toolkit.fluxcd.io/v1beta2/namespaces/flux-system/gitrepositories",
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
        "/apis/kustomize.toolkit.fluxcd.io/v1beta2/namespaces/flux-system/kustomizations",
    ]
    assert [obj["apiVersion"] for _, obj in found] == [
        "source.toolkit.fluxcd.io/v1beta2",
        "kustomize.toolkit.fluxcd.io/v1beta2",
    ]
    conversion = convert(found)
    assert [item["kind"] for item in conversion.items] == ["Repository", "Sync"]


def test_from_cluster_refuses_a_hostile_namespace() -> None:
    with pytest.raises(InvalidName):
        list(flux_objects_from_cluster(_OnlyV1beta2(), namespace="../kube-system"))  # type: ignore[arg-type]
