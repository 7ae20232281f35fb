"""kopf against the emulator: an operator with a finalizer and status patches, end to end.

kopf is the strictest client the emulator has: it watches with resourceVersion resumes, stores its
progress in annotations with JSON patches guarded by a ``test`` op on the resourceVersion (and
relies on a failed test answering 422), merge-patches the status subresource, adds and removes a
finalizer, and posts Events. If it runs a full create / update / delete cycle here, the operator of
this project can be tested against the emulator with confidence.

The operator runs as a real ``kopf run`` subprocess, restricted to one namespace and cluster-wide.
Every assertion holds on real Kubernetes too: with ``SEALED_GITOPS_E2E_KUBECONFIG`` set, the
kubeconfig fixture points at that cluster instead (the CRD is then created once and left in place,
since concurrent runs share it; each run's objects carry their own label and namespace).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sealed_gitops.testing import KubeEmulator
from tests.emulator.kubehttp import Endpoint, fresh_namespace
from tests.emulator.waiting import crd_established, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GROUP = "fidelity.sealed-gitops.io"
PLURAL = "widgets"
FINALIZER = f"{GROUP}/finalizer"
OPERATOR = Path(__file__).parent / "kopf_operators" / "widgets.py"

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": PLURAL,
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets_crd(api: client.ApiClient) -> str:
    extensions = client.ApiextensionsV1Api(api)
    name = str(CRD["metadata"]["name"])
    try:
        extensions.create_custom_resource_definition(
            client.V1CustomResourceDefinition.model_validate(CRD)
        )
    except ApiException as exc:
        # Another run against the same real cluster may have created it first.
        if exc.status != 409:
            raise

    wait_for(lambda: crd_established(extensions, name), what=f"CRD {name} to be Established")
    return name


@pytest.fixture
def namespace(endpoint: Endpoint) -> Iterator[str]:
    with fresh_namespace(endpoint, prefix="kopf") as name:
        yield name


@contextmanager
def kopf_operator(
    *, kubeconfig: Path, scope: list[str], run_id: str, workdir: Path
) -> Iterator[Path]:
    """Run the widgets operator; yields the file its handlers append to. Stops it by PID."""
    handler_log = workdir / "handlers.log"
    handler_log.touch()
    output = workdir / "kopf.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "FIDELITY_RUN": run_id,
        "FIDELITY_LOG": str(handler_log),
    }
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--verbose",
                *scope,
                str(OPERATOR),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        try:
            yield handler_log
            assert proc.poll() is None, "kopf exited early:\n" + output.read_text()[-4000:]
        except BaseException:
            # The operator's own log is the only way to see why a cycle did not finish.
            sys.stderr.write(f"--- kopf output ({output}) ---\n{output.read_text()[-8000:]}\n")
            raise
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()


def _widget(objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        # Custom objects are untyped JSON: the client declares ``object`` and returns a dict.
        found = objects.get_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    assert isinstance(found, Mapping), f"a custom object came back as {type(found).__name__}"
    return dict(found)


def _widget_body(name: str, *, run_id: str, size: int) -> dict[str, Any]:
    """A Widget labelled with this run, so a shared real cluster keeps runs apart."""
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"fidelity-run": run_id}},
        "spec": {"size": size},
    }


def _create_widget(
    objects: client.CustomObjectsApi, namespace: str, name: str, *, run_id: str, size: int
) -> None:
    body = _widget_body(name, run_id=run_id, size=size)
    objects.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)


def _in_phase(
    objects: client.CustomObjectsApi,
    namespace: str,
    name: str,
    phase: str,
    *,
    with_finalizer: bool = False,
) -> Callable[[], dict[str, Any] | None]:
    """A ``wait_for`` probe: the widget once a handler has set ``status.phase`` to ``phase``
    (and, with ``with_finalizer``, once kopf's finalizer is on it too)."""

    def probe() -> dict[str, Any] | None:
        obj = _widget(objects, namespace, name)
        status = (obj or {}).get("status") or {}
        finalizers = (obj or {}).get("metadata", {}).get("finalizers") or []
        if status.get("phase") != phase or (with_finalizer and FINALIZER not in finalizers):
            return None
        return obj

    return probe


def _delete_widget(
    objects: client.CustomObjectsApi, namespace: str, name: str, *, what: str
) -> None:
    """Delete the widget and wait until the operator's delete handler let it go."""
    objects.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, name)
    wait_for(lambda: _widget(objects, namespace, name) is None, what=what)


@pytest.mark.parametrize(
    "scope", [["--namespace", "{ns}"], ["--all-namespaces"]], ids=["namespaced", "cluster-wide"]
)
@pytest.mark.usefixtures("widgets_crd")
def test_operator_lifecycle(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    scope: list[str],
    tmp_path: Path,
) -> None:
    objects = client.CustomObjectsApi(api)
    run_id = uuid.uuid4().hex[:12]
    name = "w1"
    args = [a.format(ns=namespace) for a in scope]
    with kopf_operator(
        kubeconfig=kubeconfig, scope=args, run_id=run_id, workdir=tmp_path
    ) as handlers:
        _create_widget(objects, namespace, name, run_id=run_id, size=1)

        # Create: the finalizer goes on, and the handler's status patch lands in status.
        def created() -> dict[str, Any] | None:
            obj = _widget(objects, namespace, name)
            status = (obj or {}).get("status") or {}
            finalizers = (obj or {}).get("metadata", {}).get("finalizers") or []
            ready = FINALIZER in finalizers and status.get("phase") == "Created"
            return obj if ready and status.get("created") else None

        obj = wait_for(created, what="the finalizer and the create handler's status")
        assert obj["status"]["observedSize"] == 1
        assert obj["status"]["created"] == {"message": "widget of size 1"}
        assert obj["metadata"]["generation"] == 1

        # Update: a spec change bumps the generation and runs the update handler once.
        objects.patch_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, name, {"spec": {"size": 2}}
        )

        obj = wait_for(
            _in_phase(objects, namespace, name, "Updated"), what="the update handler's status"
        )
        assert obj["status"]["observedSize"] == 2
        assert obj["metadata"]["generation"] == 2
        assert FINALIZER in obj["metadata"]["finalizers"]

        # Delete: the object waits for the finalizer, the handler runs, then it is gone.
        _delete_widget(
            objects, namespace, name, what="the widget to disappear once the finalizer is removed"
        )
        lines = handlers.read_text().splitlines()
        assert lines == [
            f"create {namespace}/{name}",
            f"update {namespace}/{name}",
            f"delete {namespace}/{name}",
        ]

        # The handler's kopf.info() is posted as an Event on the object (core/v1 events).
        core = client.CoreV1Api(api)

        def handler_events() -> list[Any]:
            events = core.list_namespaced_event(namespace).items
            return [
                e
                for e in events
                if e.involved_object.name == name
                and e.involved_object.kind == "Widget"
                and e.reason == "WidgetCreated"
            ]

        events = wait_for(handler_events, what="kopf's Event for the create handler")
        assert events[0].involved_object.api_version == f"{GROUP}/v1"
        assert events[0].type == "Normal"
        assert events[0].message == "widget of size 1"


@pytest.mark.usefixtures("widgets_crd")
def test_operator_catches_up_after_a_restart(
    api: client.ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """Changes made while the operator is down are handled once on start, from the first LIST.

    This leans on what kopf persists in the object (its last-handled-configuration annotation)
    and on a deletion that waited for the finalizer while nobody was there to remove it.
    """
    objects = client.CustomObjectsApi(api)
    run_id = uuid.uuid4().hex[:12]
    scope = ["--namespace", namespace]

    def start() -> AbstractContextManager[Path]:
        return kopf_operator(kubeconfig=kubeconfig, scope=scope, run_id=run_id, workdir=tmp_path)

    def phase_is(name: str, phase: str) -> Callable[[], dict[str, Any] | None]:
        return _in_phase(objects, namespace, name, phase)

    with start():
        _create_widget(objects, namespace, "w", run_id=run_id, size=1)
        wait_for(phase_is("w", "Created"), what="the create handler")

    # Down: a change to the spec, and a second object created from scratch.
    objects.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "w", {"spec": {"size": 3}}
    )
    _create_widget(objects, namespace, "w2", run_id=run_id, size=1)

    with start() as handlers:
        obj = wait_for(phase_is("w", "Updated"), what="the update made while the operator was down")
        assert obj["status"]["observedSize"] == 3
        wait_for(phase_is("w2", "Created"), what="the object created while the operator was down")
        # Let the second cycle settle before stopping, so its finalizer is in place.
        wait_for(
            lambda: (
                FINALIZER
                in (
                    (_widget(objects, namespace, "w2") or {}).get("metadata", {}).get("finalizers")
                    or []
                )
            ),
            what="the finalizer on w2",
        )

    # Down again: a deletion waits for the finalizer the operator put there.
    objects.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "w")
    pending = _widget(objects, namespace, "w")
    assert pending is not None
    assert pending["metadata"]["deletionTimestamp"]

    with start():
        wait_for(lambda: _widget(objects, namespace, "w") is None, what="w to be finalized")
    lines = handlers.read_text().splitlines()
    # The two objects handled after the restart may come in either order; each handler once.
    assert lines[0] == f"create {namespace}/w"
    assert sorted(lines[1:3]) == [f"create {namespace}/w2", f"update {namespace}/w"]
    assert lines[3:] == [f"delete {namespace}/w"]


# ---------------------------------------------------------------------- as a service account


@pytest.fixture(scope="module")
def secured_kubeconfig(e2e_kubeconfig: Path | None) -> Iterator[Path]:
    """An admin kubeconfig of a server enforcing RBAC: a fresh emulator, or the real cluster."""
    if e2e_kubeconfig is not None:
        yield e2e_kubeconfig
        return
    with KubeEmulator(rbac=True).run_in_thread() as emulator:
        yield emulator.kubeconfig_path


def _token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    config = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(
        c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
    )
    # Only the token: a client certificate would win over it on a real server.
    config["users"] = [{"name": context["user"], "user": {"token": token}}]
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_as_a_namespaced_service_account(secured_kubeconfig: Path, tmp_path: Path) -> None:
    """kopf under RBAC: a Role in its namespace, and cluster-wide only what kopf insists on.

    kopf lists and watches CRDs and namespaces cluster-wide even when it serves one namespace
    (without that it retries the 403 and never starts), so a ClusterRole grants exactly that, as
    kopf's own deployment docs do; everything else comes from a namespaced Role.
    """
    # kubernetes.config carries no annotations.
    with config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(secured_kubeconfig)
    ) as admin:
        extensions = client.ApiextensionsV1Api(admin)
        with contextlib.suppress(ApiException):
            extensions.create_custom_resource_definition(
                client.V1CustomResourceDefinition.model_validate(CRD)
            )
        wait_for(
            lambda: crd_established(extensions, CRD["metadata"]["name"]),
            what="the CRD to be Established",
        )
        core = client.CoreV1Api(admin)
        rbac = client.RbacAuthorizationV1Api(admin)
        ns = f"kopf-sa-{uuid.uuid4().hex[:8]}"
        core.create_namespace(client.V1Namespace.model_validate({"metadata": {"name": ns}}))
        cluster_role = f"{ns}-operator"
        try:
            rbac.create_cluster_role(
                client.V1ClusterRole.model_validate(
                    {
                        "metadata": {"name": cluster_role},
                        "rules": [
                            {
                                "apiGroups": ["apiextensions.k8s.io"],
                                "resources": ["customresourcedefinitions"],
                                "verbs": ["list", "watch"],
                            },
                            {
                                "apiGroups": [""],
                                "resources": ["namespaces"],
                                "verbs": ["list", "watch"],
                            },
                        ],
                    }
                )
            )
            rbac.create_cluster_role_binding(
                client.V1ClusterRoleBinding.model_validate(
                    {
                        "metadata": {"name": cluster_role},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": cluster_role,
                        },
                        "subjects": [
                            {"kind": "ServiceAccount", "name": "operator", "namespace": ns}
                        ],
                    }
                )
            )
            core.create_namespaced_service_account(
                ns, client.V1ServiceAccount.model_validate({"metadata": {"name": "operator"}})
            )
            rbac.create_namespaced_role(
                ns,
                client.V1Role.model_validate(
                    {
                        "metadata": {"name": "operator"},
                        "rules": [
                            {
                                "apiGroups": [GROUP],
                                "resources": [PLURAL],
                                "verbs": ["get", "list", "watch", "patch", "update"],
                            },
                            {
                                "apiGroups": [GROUP],
                                "resources": [f"{PLURAL}/status"],
                                "verbs": ["get", "patch", "update"],
                            },
                            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
                        ],
                    }
                ),
            )
            rbac.create_namespaced_role_binding(
                ns,
                client.V1RoleBinding.model_validate(
                    {
                        "metadata": {"name": "operator"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": "operator",
                        },
                        "subjects": [
                            {"kind": "ServiceAccount", "name": "operator", "namespace": ns}
                        ],
                    }
                ),
            )
            issued = core.create_namespaced_service_account_token(
                "operator",
                ns,
                client.AuthenticationV1TokenRequest.model_validate(
                    {"spec": {"expirationSeconds": 3600}}
                ),
            )
            token = issued.status.token if issued.status else None
            assert token, "the TokenRequest came back without a token"
            kubeconfig = _token_kubeconfig(secured_kubeconfig, token, tmp_path / "operator.yaml")

            objects = client.CustomObjectsApi(admin)
            run_id = uuid.uuid4().hex[:12]
            with kopf_operator(
                kubeconfig=kubeconfig, scope=["--namespace", ns], run_id=run_id, workdir=tmp_path
            ) as handlers:
                _create_widget(objects, ns, "w", run_id=run_id, size=5)
                obj = wait_for(
                    _in_phase(objects, ns, "w", "Created"),
                    what="the create handler, run as the service account",
                )
                assert FINALIZER in obj["metadata"]["finalizers"]
                _delete_widget(objects, ns, "w", what="the finalized delete")
                assert handlers.read_text().splitlines() == [f"create {ns}/w", f"delete {ns}/w"]
        finally:
            for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
                with contextlib.suppress(ApiException):
                    delete(cluster_role)
            core.delete_namespace(ns)


# ---------------------------------------------------------------------- under injected faults


@pytest.mark.usefixtures("widgets_crd")
def test_operator_retries_through_injected_faults(
    emulator: KubeEmulator,
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Emulator only: kopf's retries against 5xx answers and a dropped connection.

    The first PATCHes of the widget fail (503 twice, then the connection is dropped) and the
    first event post is slow; kopf must retry and still finish the cycle with nothing lost.
    """
    objects = client.CustomObjectsApi(api)
    run_id = uuid.uuid4().hex[:12]
    emulator.faults.add(verb="patch", resource=PLURAL, namespace=namespace, count=2, status=503)
    emulator.faults.add(verb="patch", resource=PLURAL, namespace=namespace, drop=True)
    emulator.faults.add(verb="create", resource="events", namespace=namespace, delay=1.0)
    try:
        with kopf_operator(
            kubeconfig=kubeconfig, scope=["--namespace", namespace], run_id=run_id, workdir=tmp_path
        ) as handlers:
            _create_widget(objects, namespace, "w", run_id=run_id, size=7)
            obj = wait_for(
                _in_phase(objects, namespace, "w", "Created", with_finalizer=True),
                what="the create cycle despite the faults",
            )
            assert obj["status"]["observedSize"] == 7
            # Every armed fault was met (the event post is asynchronous, hence the wait).
            wait_for(lambda: emulator.faults.pending() == 0, what="every fault to be taken")
            _delete_widget(objects, namespace, "w", what="the finalized delete")
            assert handlers.read_text().splitlines() == [
                f"create {namespace}/w",
                f"delete {namespace}/w",
            ]
    finally:
        emulator.faults.clear()
