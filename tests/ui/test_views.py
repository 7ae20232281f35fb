"""The web view's pages through aiohttp's test client, over the in-process API emulator.

Each test names one promise of the view: the walls (only GET, only our Host, the security
headers on every answer), escaping of what tenants write, the failing file and its reason, the
inventory tree, which files still need a key, and a Secret's page that never carries a value.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sealed_gitops.cluster import SYNC_ANNOTATION, KubeClient, connect
from sealed_gitops.plan.names import InvalidName
from sealed_gitops.testing import KubeEmulator
from sealed_gitops.ui import UiSettings, make_app, timeline
from sealed_gitops.ui.guard import allowed_hosts, host_name
from sealed_gitops.ui.reads import fetch_events, inventory_tree, keyring_rows
from tests.ui.cluster_objects import CANARY, DRIFT_MANAGER, FP_NEW, FP_OLD, NS, populate

PAGES = [
    "/",
    f"/syncs/{NS}/broken",
    f"/syncs/{NS}/good",
    "/keyrings",
    "/secrets",
    f"/secrets/{NS}/db",
]


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeClient]:
    with KubeEmulator().run_in_thread() as api:
        client = connect(api.kubeconfig_path)
        try:
            populate(client)
            yield client
        finally:
            client.close()


@pytest.fixture
async def web(kube: KubeClient) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(kube, UiSettings(bind="127.0.0.1", port=0))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.mark.parametrize("path", [*PAGES, "/static/ui.css", "/static/ui.js"])
async def test_every_answer_is_guarded(web: TestClient[Any, Any], path: str) -> None:
    response = await web.get(path)
    assert response.status == 200, await response.text()
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def test_only_get(web: TestClient[Any, Any], method: str) -> None:
    response = await web.request(method, "/")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),
        ("evil.example:8080", 421),
        ("127.0.0.1.evil.example", 421),
        ("", 421),
        ("localhost:1234", 200),
        ("127.0.0.1", 200),
    ],
)
async def test_host_header_must_be_ours(web: TestClient[Any, Any], host: str, status: int) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host."""
    response = await web.get("/", headers={"Host": host})
    assert response.status == status
    if status != 200:
        assert NS not in await response.text()


async def test_tenant_text_is_escaped(web: TestClient[Any, Any]) -> None:
    for path in ("/", f"/syncs/{NS}/broken"):
        text = await (await web.get(path)).text()
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>bad" not in text
        assert "deploy/&lt;b&gt;bad&lt;/b&gt;.sops.yaml" in text  # the failing file
        assert "MAC mismatch" in text  # and its reason
    text = await (await web.get(f"/syncs/{NS}/broken")).text()
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in text  # the Ready message


async def test_sync_page_shows_the_inventory_tree(web: TestClient[Any, Any]) -> None:
    text = await (await web.get(f"/syncs/{NS}/good")).text()
    assert f'href="/secrets/{NS}/db"' in text
    assert "settings" in text and "Namespace" in text
    assert "main@sha1:" + "2" * 40 in text


async def test_keyrings_page_names_the_files_a_key_is_needed_for(web: TestClient[Any, Any]) -> None:
    text = await (await web.get("/keyrings")).text()
    assert f"Sync {NS}/good: 2 file(s)" in text
    assert "deploy/a.sops.yaml" in text and "deploy/c.sops.yaml" not in text


async def test_secret_pages_never_carry_a_value(web: TestClient[Any, Any]) -> None:
    encoded = base64.b64encode(CANARY.encode()).decode()
    for path in ("/secrets", f"/secrets/{NS}/db"):
        text = await (await web.get(path)).text()
        assert CANARY not in text and encoded not in text
        assert "password" in text  # the key's name is shown
    text = await (await web.get(f"/secrets/{NS}/db")).text()
    assert "not compared (no keys given to the UI)" in text
    assert "--repo PATH" in text  # no checkout: the page says how to get a timeline


async def test_secret_timeline_marks_drift_corrections(web: TestClient[Any, Any]) -> None:
    """The Sync's DriftCorrected Event names the Secret: the timeline shows it as such."""
    text = await (await web.get(f"/secrets/{NS}/db")).text()
    assert 'class="event change-drift-corrected drift"' in text
    assert f"live change by {DRIFT_MANAGER}" in text


@pytest.mark.parametrize(
    "path",
    [
        "/syncs/..%2F..%2Fkube-system/x",
        "/syncs/UPPER/x",
        f"/secrets/{NS}/no-such",
        "/syncs/nope/nope",
        "/static/guard.py",
        "/static/..%2Fguard.py",
    ],
)
async def test_unknown_or_malformed_is_404(web: TestClient[Any, Any], path: str) -> None:
    response = await web.get(path)
    assert response.status == 404
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:80", "::1"),
        ("LocalHost", "localhost"),
        ("::1", "::1"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_allowed_hosts() -> None:
    assert "localhost" in allowed_hosts(bind="127.0.0.1")
    assert allowed_hosts(bind="10.0.0.5") == frozenset({"10.0.0.5"})
    assert "ui.example" in allowed_hosts(bind="0.0.0.0", extra=["UI.example"])  # noqa: S104


def test_inventory_tree_groups_by_namespace_and_kind() -> None:
    tree = inventory_tree({"entries": [
        {"id": "b_x__Secret", "v": "v1"}, {"id": "a_y_apps_Deployment", "v": "v1"},
        {"id": "a_a_apps_Deployment", "v": "v1"}, {"id": "_b__Namespace", "v": "v1"},
    ]})  # fmt: skip
    assert tree == {
        "": {"Namespace": ["b"]},
        "a": {"Deployment": ["a", "y"]},
        "b": {"Secret": ["x"]},
    }


def test_a_retired_key_is_needed_only_by_files_no_usable_key_opens() -> None:
    ring = {
        "metadata": {"namespace": "n", "name": "r"},
        "status": {"keys": [
            {"fingerprint": FP_OLD, "state": "previous", "created": "2026-12-01T00:00:00Z"},
            {"fingerprint": FP_NEW, "state": "active", "created": "2026-12-04T12:00:00Z"},
        ]},
    }  # fmt: skip
    record = {"keyRing": "n/r", "groups": [
        {"keySets": [[FP_OLD]], "files": 4, "examples": ["x.yaml"]},
        {"keySets": [[FP_OLD, FP_NEW]], "files": 1, "examples": ["y.yaml"]},
    ]}  # fmt: skip
    syncs = [
        {"metadata": {"namespace": "n", "name": "s"},
         "status": {"decryptionKeys": {"lastApplied": record}}},
        {"metadata": {"namespace": "n", "name": "t"},
         "status": {"decryptionKeys": {"lastApplied": {**record, "truncated": True}}}},
    ]  # fmt: skip
    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    (row,) = keyring_rows([ring], syncs, now=now)
    old, new = row.keys
    assert old.needed_by == (("n/s", "4", ("x.yaml",)), ("n/t", "?", ()))
    assert new.needed_by == (("n/t", "?", ()),)  # a truncated record answers nothing
    assert (old.age, new.age) == ("4d", "12h")


@pytest.mark.parametrize(
    ("annotation", "sha"),
    [
        ("main@sha1:" + "ab" * 20, "ab" * 20),
        ("C0FFEE1", "c0ffee1"),
        ("main@sha1:--output=/tmp/x", ""),  # would be an option of git show
        ("--upload-pack=touch x", ""),
        ("", ""),
    ],
)
def test_only_a_hex_commit_reaches_git(annotation: str, sha: str) -> None:
    assert timeline._sha(annotation) == sha


@pytest.mark.parametrize(
    ("annotation", "path"),
    [
        ("deploy/db.sops.yaml", "deploy/db.sops.yaml"),
        ("../../etc/passwd", ""),
        ("/etc/passwd", ""),
        ("-p", ""),
        ("deploy//x", ""),
        ("deploy\\..\\x", ""),
        ("deploy/db\x00.yaml", ""),  # subprocess would raise: a 500 instead of the page
        ("deploy/db\n.yaml", ""),
        ("d" * (timeline.MAX_PATH + 1), ""),
    ],
)
def test_only_a_relative_path_inside_the_checkout_is_audited(annotation: str, path: str) -> None:
    assert timeline._repo_path(annotation) == path


async def test_a_forged_sync_annotation_is_neither_linked_nor_read(
    web: TestClient[Any, Any], kube: KubeClient
) -> None:
    """Whoever may edit a Secret writes its Sync annotation: only a valid ``ns/name`` is used."""
    forged = "x/../../keyrings?"
    kube.request(
        "POST",
        f"/api/v1/namespaces/{NS}/secrets",
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "forged",
                "namespace": NS,
                "annotations": {SYNC_ANNOTATION: forged},
            },
        },
        action="create",
        what="Secret forged",
    )
    response = await web.get(f"/secrets/{NS}/forged")
    assert response.status == 200, await response.text()
    text = await response.text()
    assert 'href="/syncs/' not in text
    assert "keyrings?" not in text


@pytest.mark.parametrize(
    ("annotation", "ref"),
    [
        (f"{NS}/good", f"{NS}/good"),
        ("x/../../keyrings", ""),
        ("x/a,involvedObject.kind=Secret", ""),  # would widen the Events' field selector
        ("no-slash", ""),
        ("UPPER/x", ""),
    ],
)
def test_only_a_valid_sync_reference_is_kept(annotation: str, ref: str) -> None:
    assert timeline._sync_ref(annotation) == ref


def test_an_events_query_takes_only_a_valid_name(kube: KubeClient) -> None:
    """A name with a ',' would add a term to the Events' field selector: refused before the API."""
    with pytest.raises(InvalidName):
        fetch_events(kube, namespace=NS, kind="Sync", name="good,involvedObject.kind=Secret")
    assert fetch_events(kube, namespace=NS, kind="Sync", name="good")  # the drift Event
