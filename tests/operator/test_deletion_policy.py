"""Issue 15, Must 9: ``spec.deletionPolicy`` decides what deleting a Sync does to its objects.

Flux's values: MirrorPrune (the default) follows ``spec.prune``; Delete deletes whatever prune
says; Orphan keeps everything; WaitForTermination deletes and keeps the Sync (its finalizer)
until the objects are gone. Shown with a ConfigMap the Sync applied, on both tiers; a finalizer
on the ConfigMap (``example.com/hold``, which the test removes) keeps it terminating.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import ClusterError, ConfigError
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.specs import SyncSpec

from .conftest import Setup, is_ready, wait_for
from .manifests import config_doc

OperatorFactory = Callable[..., OperatorThread]
HOLD = "example.com/hold"


def _parse(spec: dict[str, Any]) -> SyncSpec:
    return SyncSpec.parse(
        {
            "metadata": {"namespace": "team-a", "name": "app"},
            "spec": {"repositoryRef": {"name": "repo"}, **spec},
        }
    )


def test_the_default_is_mirror_prune_and_unknown_policies_are_refused() -> None:
    assert _parse({}).deletion_policy == "MirrorPrune"
    assert _parse({"deletionPolicy": "Orphan"}).deletion_policy == "Orphan"
    for hostile in ("Bogus", "delete", "x" * 10_000, ["Delete"]):
        with pytest.raises(ConfigError, match=r"spec\.deletionPolicy") as caught:
            _parse({"deletionPolicy": hostile})
        assert len(str(caught.value)) < 300


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("deletionPolicy", "Bogus"),
        ("timeout", "forever"),
        ("dependsOn", [{"name": "../x"}]),
        ("healthChecks", [{"apiVersion": "v1", "kind": "ConfigMap"}]),  # no name
        ("dependsOn", [{"name": f"s{i}"} for i in range(101)]),
    ],
)
def test_the_api_server_refuses_invalid_fields(setup: Setup, field: str, value: Any) -> None:
    """The CRD says the same rules as SyncSpec, so such a Sync is never stored."""
    with pytest.raises(ClusterError):
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "bad", "namespace": setup.namespace},
                "spec": {"repositoryRef": {"name": "app"}, field: value},
            }
        )


def _cm_path(setup: Setup) -> str:
    return f"/api/v1/namespaces/{setup.namespace}/configmaps/settings"


def _sync_gone(setup: Setup) -> bool:
    return setup.kube.get(setup.kube.sync_path()) is None


def _applied(setup: Setup, operator_factory: OperatorFactory, **spec: Any) -> None:
    setup.objects(**spec)
    operator_factory(setup.namespace)
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=90, what="Ready=True")
    assert setup.kube.get(_cm_path(setup)) is not None


@contextlib.contextmanager
def _released(setup: Setup) -> Iterator[None]:
    """Remove the test's finalizer from the ConfigMap on the way out, whatever happened, so the
    namespace can be deleted."""
    try:
        yield
    finally:
        with contextlib.suppress(ClusterError):
            setup.kube.patch(_cm_path(setup), {"metadata": {"finalizers": None}})


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("prune", "policy", "deleted"),
    [
        pytest.param(True, "MirrorPrune", True, id="mirror-prune-on"),
        pytest.param(False, "MirrorPrune", False, id="mirror-prune-off"),
        pytest.param(False, "Delete", True, id="delete-whatever-prune"),
        pytest.param(True, "Orphan", False, id="orphan-whatever-prune"),
    ],
)
def test_deleting_the_sync_follows_its_policy(
    setup: Setup, operator_factory: OperatorFactory, prune: bool, policy: str, deleted: bool
) -> None:
    setup.push({"deploy/cm.yaml": config_doc("settings", setup.namespace, level="info")})
    _applied(setup, operator_factory, prune=prune, extra_spec={"deletionPolicy": policy})

    setup.kube.delete(setup.kube.sync_path())
    wait_for(lambda: _sync_gone(setup), timeout=90, what="Sync deleted")
    if deleted:
        wait_for(lambda: setup.kube.get(_cm_path(setup)) is None, timeout=30, what="pruned")
    else:
        time.sleep(1)  # the finalizer ran before the Sync went: nothing more will happen
        assert setup.kube.get(_cm_path(setup)) is not None


def _held_config_map(namespace: str) -> str:
    doc = yaml.safe_load(config_doc("settings", namespace, level="info"))
    doc["metadata"]["finalizers"] = [HOLD]
    return yaml.safe_dump(doc)


@pytest.mark.e2e
def test_wait_for_termination_keeps_the_sync_until_its_objects_are_gone(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    setup.push({"deploy/cm.yaml": _held_config_map(setup.namespace)})
    with _released(setup):
        _applied(
            setup,
            operator_factory,
            extra_spec={"deletionPolicy": "WaitForTermination", "timeout": "2s"},
        )
        setup.kube.delete(setup.kube.sync_path())
        wait_for(
            lambda: (
                (setup.kube.get(_cm_path(setup)) or {}).get("metadata", {}).get("deletionTimestamp")
            ),
            timeout=60,
            what="ConfigMap terminating",
        )
        # Longer than the timeout of one attempt: the Sync stays while its object does.
        time.sleep(5)
        held = setup.kube.get(setup.kube.sync_path())
        assert held is not None and held["metadata"].get("deletionTimestamp")

        setup.kube.patch(_cm_path(setup), {"metadata": {"finalizers": None}})
        wait_for(lambda: setup.kube.get(_cm_path(setup)) is None, timeout=30, what="CM gone")
        wait_for(lambda: _sync_gone(setup), timeout=90, what="Sync gone after its objects")


@pytest.mark.e2e
def test_delete_does_not_wait_for_termination(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    setup.push({"deploy/cm.yaml": _held_config_map(setup.namespace)})
    with _released(setup):
        _applied(setup, operator_factory, extra_spec={"deletionPolicy": "Delete"})
        setup.kube.delete(setup.kube.sync_path())
        wait_for(lambda: _sync_gone(setup), timeout=90, what="Sync deleted")
        live = setup.kube.get(_cm_path(setup))
        assert live is not None and live["metadata"].get("deletionTimestamp")
