"""API failures at the boundary: the right error class, the object named, no value echoed."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from sealed_gitops.cluster import KubeClient, Policy, Result, SyncRef, apply
from sealed_gitops.cluster.apierrors import error_for_status
from sealed_gitops.errors import (
    ApiConflict,
    ApiForbidden,
    ApiNotFound,
    ApiUnavailable,
    ClusterError,
)
from sealed_gitops.redact import MASK, register
from sealed_gitops.testing import KubeEmulator
from tests.cluster.manifests import config_map, secret


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, ApiNotFound),
        (409, ApiConflict),
        (401, ApiForbidden),
        (403, ApiForbidden),
        (429, ApiUnavailable),
        (500, ApiUnavailable),
        (503, ApiUnavailable),
        (504, ApiUnavailable),
        (400, ClusterError),
        (422, ClusterError),
    ],
)
def test_status_codes_map_to_error_classes(status: int, cls: type[ClusterError]) -> None:
    body = json.dumps({"kind": "Status", "message": "server says no", "reason": "X"})
    error = error_for_status(status, body, action="apply", what="ConfigMap a/b")
    assert type(error) is cls
    assert error.status == status
    assert str(error) == f"apply ConfigMap a/b: HTTP {status}: server says no"


def test_sensitive_errors_keep_only_reason_and_field_names() -> None:
    body = json.dumps({
        "kind": "Status", "reason": "Invalid", "code": 422,
        "message": 'Secret "db" is invalid: data[x]: Invalid value: "pin=1234"',
        "details": {"causes": [{"field": "data[x]", "message": 'Invalid value: "pin=1234"'}]},
    })
    error = error_for_status(422, body, action="apply", what="Secret a/db", sensitive=True)
    assert str(error) == "apply Secret a/db: HTTP 422: Invalid (fields: data[x])"
    assert "1234" not in str(error)


def test_registered_values_are_redacted_from_server_messages() -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    register(canary)
    body = json.dumps({"kind": "Status", "message": f"webhook denied: value {canary}"})
    error = error_for_status(400, body, action="apply", what="ConfigMap a/b")
    assert canary not in str(error)
    assert MASK in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, ApiUnavailable), (503, ApiUnavailable), (409, ApiConflict), (403, ApiForbidden)],
)
def test_injected_write_failures_map_and_name_the_object(
    emulator: KubeEmulator, kube: KubeClient, namespace: str, sync: SyncRef, *,
    status: int, cls: type[ClusterError],
) -> None:
    emulator.faults.add(verb="patch", resource="secrets", namespace=namespace, status=status)
    result = apply(kube, [secret(namespace, "db", {"password": "p4ssw0rd-value"})], sync=sync)
    (outcome,) = result.outcomes
    assert outcome.result is Result.FAILED
    assert isinstance(outcome.error, cls)
    assert f"Secret {namespace}/db" in str(outcome.error)
    assert "p4ssw0rd-value" not in outcome.describe()
    assert (result.applied, result.failed, result.ok) == (0, 1, False)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy.ISOLATE, [Result.CREATED, Result.FAILED, Result.CREATED]),
        (Policy.ATOMIC, [Result.CREATED, Result.FAILED, Result.SKIPPED]),
    ],
)
def test_failure_policy(
    emulator: KubeEmulator, kube: KubeClient, namespace: str, sync: SyncRef, *,
    policy: Policy, expected: list[Result],
) -> None:
    emulator.faults.add(verb="patch", resource="configmaps", namespace=namespace, name="b",
                        status=500)
    objects = [config_map(namespace, n) for n in ("a", "b", "c")]
    result = apply(kube, objects, sync=sync, policy=policy)
    assert [o.result for o in result.outcomes] == expected
    # Only what was applied enters the inventory: a failed or skipped object is never pruned
    # on account of this apply.
    assert {e.id.name for e in result.inventory.entries} == {
        o.id.name for o, r in zip(result.outcomes, expected, strict=True)
        if r is Result.CREATED}


def test_timeout_and_dropped_connection_are_unavailable(
    emulator: KubeEmulator, kubeconfig: object, namespace: str, sync: SyncRef
) -> None:
    from sealed_gitops.cluster import connect

    quick = connect(kubeconfig, timeout=0.5)  # type: ignore[arg-type]
    try:
        emulator.faults.add(verb="patch", resource="configmaps", namespace=namespace,
                            name="slow", delay=3.0)
        emulator.faults.add(verb="patch", resource="configmaps", namespace=namespace,
                            name="dropped", drop=True, count=5)
        started = time.monotonic()
        result = apply(quick, [config_map(namespace, "slow"), config_map(namespace, "dropped")],
                       sync=sync, policy=Policy.ISOLATE)
        assert time.monotonic() - started < 3.0
        assert [type(o.error) for o in result.outcomes] == [ApiUnavailable, ApiUnavailable]
        assert "unreachable" in str(result.outcomes[0].error)
    finally:
        quick.close()
        emulator.faults.clear()


@pytest.mark.e2e
def test_a_real_422_on_a_secret_does_not_echo_the_value(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    """An invalid key is refused by the server itself (422) and the error names only the field."""
    value = f"secret-{secrets.token_hex(6)}"
    bad_key = f"bad key {value}"  # a key that is refused, and which the server quotes back
    register(value)
    result = apply(kube, [secret(namespace, "db", {bad_key: value})], sync=sync)
    (outcome,) = result.outcomes
    assert outcome.result is Result.FAILED
    assert type(outcome.error) is ClusterError
    assert outcome.error.status == 422
    text = outcome.describe()
    assert value not in text
    assert "Invalid" in text
    assert "Invalid value" not in text  # the server's prose is not kept for Secrets


@pytest.mark.e2e
def test_a_real_422_on_a_config_map_is_redacted(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    value = f"canary-{secrets.token_hex(6)}"
    register(value)
    result = apply(kube, [config_map(namespace, "c", {f"bad key {value}": "x"})], sync=sync)
    (outcome,) = result.outcomes
    assert outcome.error is not None and outcome.error.status == 422
    assert value not in outcome.describe()
    assert MASK in outcome.describe()


def test_reading_a_missing_object_is_api_not_found(kube: KubeClient, namespace: str) -> None:
    with pytest.raises(ApiNotFound, match=f"configmaps/nothing-here|{namespace}"):
        kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/nothing-here",
                     action="read", what=f"ConfigMap {namespace}/nothing-here")
