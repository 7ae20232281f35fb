"""Issue 15, Must 9: ``spec.dependsOn`` orders Syncs as Flux's Kustomization ``dependsOn`` does.

A Sync is applied only once every Sync it depends on is Ready at its Repository's latest
revision; until then it is Ready=False, reason DependencyNotReady, naming the dependency. A
cycle or a self-dependency is a spec error (InvalidSpec), and a dependency in another namespace
follows the cross-namespace rule (refused by default, AccessDenied).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sealed_gitops.errors import ApiNotFound, ConfigError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.dependencies import check_dependencies
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.specs import DependencyRef, SyncSpec
from sealed_gitops.operator.sync_status import DependencyNotReady

from .conftest import Setup, ready, wait_for
from .manifests import config_doc

OperatorFactory = Callable[..., OperatorThread]


# -- the spec ------------------------------------------------------------------------------------


def _parse(spec: dict[str, Any]) -> SyncSpec:
    return SyncSpec.parse(
        {
            "metadata": {"namespace": "team-a", "name": "app"},
            "spec": {"repositoryRef": {"name": "repo"}, **spec},
        }
    )


def test_depends_on_is_parsed_with_the_namespace_defaulted() -> None:
    parsed = _parse({"dependsOn": [{"name": "infra"}, {"name": "db", "namespace": "shared"}]})
    assert parsed.depends_on == (DependencyRef("team-a", "infra"), DependencyRef("shared", "db"))


@pytest.mark.parametrize(
    ("depends_on", "field"),
    [
        pytest.param([{"name": "app"}], "names this Sync itself", id="self"),
        pytest.param([{"name": "app", "namespace": "team-a"}], "itself", id="self-explicit-ns"),
        pytest.param([{"name": "../../x"}], "spec.dependsOn[0].name", id="climbing-name"),
        pytest.param([{"name": "x", "namespace": "A B"}], "spec.dependsOn[0].namespace", id="ns"),
        pytest.param(["infra"], "spec.dependsOn[0] must be an object", id="not-object"),
        pytest.param({"name": "x"}, "spec.dependsOn must be a list", id="not-list"),
        pytest.param([{"name": f"s{i}"} for i in range(101)], "at most 100", id="too-many"),
    ],
)
def test_hostile_depends_on_is_refused_naming_the_field(depends_on: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        _parse({"dependsOn": depends_on})


class _Syncs:
    """A stand-in API server holding Syncs by path; remembers every path read."""

    def __init__(self, syncs: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.syncs = syncs
        self.read: list[str] = []
        self.halted = threading.Event()

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.read.append(path)
        parts = path.split("/")
        found = self.syncs.get((parts[-3], parts[-1])) if parts[-2] == "syncs" else None
        if found is None:
            raise ApiNotFound(f"{path} not found")
        return found


def test_the_cycle_search_does_not_look_into_other_namespaces_when_refs_are_refused() -> None:
    # team-a/app -> team-a/infra -> team-b/db -> team-a/app: infra's cross-namespace reference is
    # refused (it never runs), so the loop is not one; following it would read team-b's Syncs
    # with the operator's rights and tell team-a, in app's status, that team-b/db exists and
    # what it depends on.
    def sync(ns: str, name: str, deps: list[dict[str, str]]) -> dict[str, Any]:
        return {"metadata": {"namespace": ns, "name": name}, "spec": {"dependsOn": deps}}

    client = _Syncs(
        {
            ("team-a", "infra"): sync("team-a", "infra", [{"name": "db", "namespace": "team-b"}]),
            ("team-b", "db"): sync("team-b", "db", [{"name": "app", "namespace": "team-a"}]),
        }
    )
    ctx = cast(
        OperatorContext,
        SimpleNamespace(client=client, settings=SimpleNamespace(cross_namespace_refs=False)),
    )
    with pytest.raises(DependencyNotReady, match="team-a/infra is not Ready"):
        check_dependencies(ctx, _parse({"dependsOn": [{"name": "infra"}]}))
    assert [p for p in client.read if "/namespaces/team-b/" in p] == []

    # Allowed by the admin, the same graph is a cycle, named.
    client.read.clear()
    ctx.settings.cross_namespace_refs = True
    with pytest.raises(ConfigError, match="cycle team-a/app -> team-a/infra -> team-b/db"):
        check_dependencies(ctx, _parse({"dependsOn": [{"name": "infra"}]}))


# -- through the operator ------------------------------------------------------------------------


def _sync(setup: Setup, name: str, *, path: str, **extra: Any) -> None:
    setup.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": name, "namespace": setup.namespace},
            "spec": {
                "repositoryRef": {"name": "app"},
                "path": path,
                "interval": "1s",
                "retryInterval": "1s",
                "decryption": {"secretRef": {"name": "sops-keys"}},
                **extra,
            },
        }
    )


def _reason(setup: Setup, name: str, reason: str, *phrases: str) -> Callable[[], Any]:
    """A check for Ready=False with ``reason`` and every phrase in its message."""

    def check() -> dict[str, Any] | None:
        cond = ready(setup.kube.sync(name))
        if (
            cond
            and cond["status"] == "False"
            and cond["reason"] == reason
            and all(p in cond["message"] for p in phrases)
        ):
            return cond
        return None

    return check


def _set_spec(setup: Setup, name: str, **fields: Any) -> None:
    setup.kube.patch(setup.kube.sync_path(name), {"spec": fields})


def _write_status(setup: Setup, path: str, status: dict[str, Any]) -> None:
    setup.kube.client.request(
        "PATCH",
        f"{path}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
        action="patch",
        what=path,
    )


def _level(setup: Setup, name: str) -> str | None:
    cm = setup.kube.get(f"/api/v1/namespaces/{setup.namespace}/configmaps/{name}")
    return None if cm is None else (cm.get("data") or {}).get("level")


@pytest.mark.e2e
def test_a_sync_waits_until_its_dependency_is_ready(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/app.yaml": config_doc("app-config", ns, level="one"),
            "infra/infra.yaml": config_doc("infra-config", ns, level="one"),
        }
    )
    # infra starts suspended: it never becomes Ready, so app must not be applied
    _sync(setup, "infra", path="./infra", suspend=True)
    setup.objects(extra_spec={"dependsOn": [{"name": "infra"}]})
    operator_factory(ns)

    cond = wait_for(
        _reason(setup, "app", "DependencyNotReady", f"dependency {ns}/infra"),
        timeout=90,
        what="app waiting on infra",
    )
    assert "is not Ready" in cond["message"]
    assert _level(setup, "app-config") is None

    _set_spec(setup, "infra", suspend=False)
    wait_for(lambda: _level(setup, "app-config") == "one", timeout=90, what="app applied")
    assert _level(setup, "infra-config") == "one"
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", timeout=90)

    # (the revision rule, "Ready at its latest revision", is shown with a dependency whose
    # status the test writes: test_a_dependency_in_another_namespace_...)


@pytest.mark.e2e
def test_a_missing_dependency_is_named(setup: Setup, operator_factory: OperatorFactory) -> None:
    ns = setup.namespace
    setup.push({"deploy/app.yaml": config_doc("app-config", ns, level="one")})
    setup.objects(extra_spec={"dependsOn": [{"name": "nowhere"}]})
    operator_factory(ns)
    wait_for(
        _reason(setup, "app", "DependencyNotReady", f"dependency {ns}/nowhere not found"),
        timeout=90,
    )
    assert _level(setup, "app-config") is None


@pytest.mark.e2e
def test_a_cycle_is_a_spec_error_naming_the_loop(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/app.yaml": config_doc("app-config", ns, level="one"),
            "infra/infra.yaml": config_doc("infra-config", ns, level="one"),
        }
    )
    _sync(setup, "infra", path="./infra", dependsOn=[{"name": "app"}])
    setup.objects(extra_spec={"dependsOn": [{"name": "infra"}]})
    operator_factory(ns)
    cond = wait_for(
        _reason(
            setup, "app", "InvalidSpec", f"dependency cycle {ns}/app -> {ns}/infra -> {ns}/app"
        ),
        timeout=90,
    )
    assert "spec.dependsOn" in cond["message"]
    wait_for(_reason(setup, "infra", "InvalidSpec", "dependency cycle"), timeout=90)
    assert _level(setup, "app-config") is None and _level(setup, "infra-config") is None


@pytest.mark.e2e
def test_a_self_dependency_is_a_spec_error(setup: Setup, operator_factory: OperatorFactory) -> None:
    ns = setup.namespace
    setup.push({"deploy/app.yaml": config_doc("app-config", ns, level="one")})
    setup.objects(extra_spec={"dependsOn": [{"name": "app"}]})
    operator_factory(ns)
    wait_for(_reason(setup, "app", "InvalidSpec", "names this Sync itself"), timeout=90)


@pytest.mark.e2e
def test_a_dependency_in_another_namespace_follows_the_cross_namespace_rule(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    other = f"{ns}-other"
    setup.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        setup.push({"deploy/app.yaml": config_doc("app-config", ns, level="one")})
        setup.objects(extra_spec={"dependsOn": [{"name": "db", "namespace": other}]})
        # the default: --no-cross-namespace-refs
        first = operator_factory(ns)
        cond = wait_for(
            _reason(setup, "app", "AccessDenied", f"{other}/db", "cross-namespace"), timeout=90
        )
        assert "Stalled" in {c["type"] for c in setup.kube.status()["conditions"]}, cond
        first.stop()

        # An admin who allows cross-namespace references: the dependency is looked up there.
        # No operator watches `other`: the test writes the dependency's status itself.
        operator_factory(ns, cross_namespace_refs=True)
        wait_for(
            _reason(setup, "app", "DependencyNotReady", f"dependency {other}/db not found"),
            timeout=90,
        )
        old, new = "main@sha1:" + "a" * 40, "main@sha1:" + "b" * 40
        repo = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{other}/repositories/db-src"
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "db-src", "namespace": other},
                "spec": {"url": "https://example.invalid/db.git"},
            }
        )
        _write_status(setup, repo, {"artifact": {"revision": new, "commit": "b" * 40}})
        dep = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{other}/syncs/db"
        created = setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "db", "namespace": other},
                "spec": {"repositoryRef": {"name": "db-src"}},
            }
        )
        generation = created["metadata"]["generation"]
        ready_true = {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
                      "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
        # Ready, but at the previous revision: not ready for its dependents yet
        _write_status(
            setup,
            dep,
            {"observedGeneration": generation, "conditions": [ready_true],
             "lastAppliedRevision": old},
        )  # fmt: skip
        wait_for(
            _reason(
                setup,
                "app",
                "DependencyNotReady",
                f"{other}/db is at {old}",
                f"not yet at its Repository's {new}",
            ),
            timeout=90,
        )
        assert _level(setup, "app-config") is None
        _write_status(setup, dep, {"lastAppliedRevision": new})
        wait_for(lambda: _level(setup, "app-config") == "one", timeout=90, what="app applied")
        wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", timeout=90)
    finally:
        setup.kube.delete(f"/api/v1/namespaces/{other}")
