"""Issue 11, finding 1 (and the cross-namespace part of 14): a tenant's reference names cannot
reach another namespace.

Each test is the attack as a hostile team-b would write it, against the operator on the emulator:
a reference name such as ``../../team-a/secrets/sops-keys`` used to be put into an API path as it
was, and the HTTP client normalised the ``..`` away, so team-b read team-a's Secret, KeyRing or
Repository. Each test plants a canary on team-a's side and checks that it never shows up on
team-b's side (a Secret, a ConfigMap, a request at team-b's own server), and that the object says
why: Ready=False, reason InvalidName, Stalled, with the field named.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import ClusterError
from sealed_gitops.testing.gitserver import WorkRepo, _self_signed
from tests.keys_lifecycle.conftest import active, create_keyring, sops_secret, wait_keys
from tests.operator.conftest import (
    ROOT,
    Kube,
    Setup,
    condition,
    ready,
    wait_for,
)
from tests.operator.manifests import secret_doc

pytestmark = pytest.mark.e2e

API = "/apis/sealed-gitops.io/v1alpha1"
PLURAL = {"Sync": "syncs", "Repository": "repositories", "KeyRing": "keyrings"}
CANARY = "canary-of-team-a-5e0d1c"


def _without_patterns(node: Any) -> Any:
    """A CRD schema with the ``pattern`` of every string field taken out."""
    if isinstance(node, dict):
        return {
            k: _without_patterns(v)
            for k, v in node.items()
            if not (k == "pattern" and isinstance(v, str) and node.get("type") == "string")
        }
    if isinstance(node, list):
        return [_without_patterns(v) for v in node]
    return node


@pytest.fixture
def crds_without_name_patterns(
    kubeconfig: Path, kubectl_path: Path, crds: None, tmp_path: Path
) -> Iterator[None]:
    """Our CRDs without their name patterns, for one test, then restored.

    With them, a real API server (and the emulator, which validates as it does) refuses the
    hostile names below at admission (test_the_crds_refuse_a_climbing_name_at_admission). The
    operator must not rely on that: objects stored before the patterns existed keep their names
    through a CRD upgrade, and CRDs get installed by other tools. So the attacks are staged past
    the CRDs, and what is tested is the operator's own check.
    """
    folder = tmp_path / "crds-without-patterns"
    folder.mkdir()
    for source in sorted((ROOT / "crds").glob("*.yaml")):
        if source.name == "kustomization.yaml":
            continue
        doc = _without_patterns(yaml.safe_load(source.read_text(encoding="utf-8")))
        (folder / source.name).write_text(yaml.safe_dump(doc), encoding="utf-8")
    _apply(kubectl_path, kubeconfig, "-f", str(folder))
    try:
        yield
    finally:
        _apply(kubectl_path, kubeconfig, "-k", str(ROOT / "crds"))


def _apply(kubectl: Path, kubeconfig: Path, *source: str) -> None:
    subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "--server-side",
         "--force-conflicts", *source],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _path(kind: str, namespace: str, name: str) -> str:
    return f"{API}/namespaces/{namespace}/{PLURAL[kind]}/{name}"


@contextlib.contextmanager
def _namespace(kube: Kube, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            kube.delete(f"/api/v1/namespaces/{name}")


def _refused(
    kube: Kube, kind: str, namespace: str, name: str, *, field: str, leaked: Callable[[], Any]
) -> dict[str, Any]:
    """Wait for ``kind`` to report InvalidName naming ``field``; fail at once if ``leaked()``."""

    def check() -> dict[str, Any] | None:
        found = leaked()
        assert not found, f"the attack worked: {found!r}"
        body = kube.get(_path(kind, namespace, name)) or {}
        cond = ready(body)
        if cond and cond["status"] == "False" and cond["reason"] == "InvalidName":
            return body
        return None

    body = dict(wait_for(check, timeout=30, what=f"{kind} Ready=False reason InvalidName"))
    message = (ready(body) or {})["message"]
    assert field in message, message
    if kind != "KeyRing":  # the KeyRing has no Stalled condition; its loop retries by itself
        assert (condition(body, "Stalled") or {}).get("status") == "True", body
    time.sleep(1.0)  # a late leak would show here
    assert not leaked()
    return body


def _sync(kube: Kube, ns: str, spec: dict[str, Any]) -> None:
    kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"path": "./deploy", "interval": "1s", "retryInterval": "1s", **spec},
        }
    )


def _canary_in_secret(kube: Kube, ns: str) -> bool:
    found = kube.secret("db", ns)
    return found is not None and CANARY.encode() in base64.b64decode(found["data"]["password"])


@pytest.mark.parametrize(
    ("field", "spec"),
    [
        ("spec.decryption.secretRef.name", {"decryption": {"secretRef": {"name": "../../a/b"}}}),
        ("spec.repositoryRef.name", {"repositoryRef": {"name": "../../team-a/repositories/x"}}),
    ],
)
def test_the_crds_refuse_a_climbing_name_at_admission(
    setup: Setup, field: str, spec: dict[str, Any]
) -> None:
    """The first line of defence, on each tier: the CRD's pattern, enforced by the API server
    (and by the emulator, which validates custom resources as kube-apiserver does)."""
    spec = {"repositoryRef": {"name": "app"}, **spec}
    with pytest.raises(ClusterError) as refused:
        _sync(setup.kube, setup.namespace, spec)
    assert "422" in str(refused.value), refused.value
    assert field in str(refused.value), refused.value


# -- Sync.spec.decryption.secretRef --------------------------------------------------------------


def test_decryption_secret_ref_cannot_climb_to_another_namespace(
    setup: Setup, operator_factory: Any, crds_without_name_patterns: None
) -> None:
    ns = setup.namespace  # team-b
    with _namespace(setup.kube, "team-a") as team_a:
        setup.secret_object("sops-keys", {"identity.agekey": setup.age_secret}, namespace=team_a)
        setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password=CANARY))})
        setup.objects(
            keys_secret=False,
            extra_spec={"decryption": {"secretRef": {"name": f"../../{team_a}/secrets/sops-keys"}}},
        )
        operator_factory(ns)
        _refused(
            setup.kube,
            "Sync",
            ns,
            "app",
            field="spec.decryption.secretRef.name",
            leaked=lambda: _canary_in_secret(setup.kube, ns),
        )


@pytest.mark.parametrize("via", ["secretRef", "keyRingRef"])
def test_admin_keyring_cannot_be_reached_by_climbing(
    setup: Setup, operator_factory: Any, client: Any, via: str, crds_without_name_patterns: None
) -> None:
    """The admin's KeyRing serves nobody but its own namespace; ``../`` in a secretRef (its key
    Secret) or a keyRingRef (the KeyRing itself, which skipped ``allowedNamespaces``) must not
    get team-b its private key."""
    ns = setup.namespace
    with _namespace(setup.kube, "system") as system:
        operator_factory(ns, namespaces=[ns, system])
        create_keyring(client, system, name="private-a")
        key = active(wait_keys(setup.kube, system, "private-a"))
        setup.push({"deploy/db.yaml": sops_secret(key["ageRecipient"], "db", ns, password=CANARY)})
        setup.objects(keys_secret=False)
        if via == "secretRef":
            secrets = client.request(
                "GET",
                f"/api/v1/namespaces/{system}/secrets",
                query={"labelSelector": "sealed-gitops.io/keyring=private-a"},
                action="list",
                what="key Secrets",
            )["items"]
            target = f"../../{system}/secrets/{secrets[0]['metadata']['name']}"
            decryption = {"secretRef": {"name": target}}
        else:
            decryption = {"keyRingRef": {"name": f"../../{system}/keyrings/private-a"}}
        setup.kube.patch(_path("Sync", ns, "app"), {"spec": {"decryption": decryption}})
        _refused(
            setup.kube,
            "Sync",
            ns,
            "app",
            field=f"spec.decryption.{via}.name",
            leaked=lambda: _canary_in_secret(setup.kube, ns),
        )


# -- Sync.spec.repositoryRef ---------------------------------------------------------------------


def test_repository_ref_cannot_climb_to_another_namespace(
    setup: Setup, operator_factory: Any, tmp_path: Path, crds_without_name_patterns: None
) -> None:
    ns = setup.namespace
    private_remote = tmp_path / "private.git"
    import subprocess

    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(private_remote)], check=True)
    private = WorkRepo(tmp_path / "private-work", remote=private_remote)
    private.write(
        {
            "deploy/cm.yaml": yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "private-cm"},
                    "data": {"secret": CANARY},
                }
            )
        }
    )
    private.commit("team-a's private content")
    private.push()
    with _namespace(setup.kube, "team-a") as team_a:
        operator_factory(ns, namespaces=[ns, team_a])
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "private", "namespace": team_a},
                "spec": {
                    "url": f"file://{private_remote}",
                    "ref": {"branch": "main"},
                    "interval": "1s",
                },
            }
        )
        wait_for(
            lambda: (
                (setup.kube.get(_path("Repository", team_a, "private")) or {}).get("status") or {}
            ).get("artifact"),
            what="team-a's Repository to publish its commit",
        )
        _sync(setup.kube, ns, {"repositoryRef": {"name": f"../../{team_a}/repositories/private"}})

        def leaked() -> bool:
            return any(CANARY in str(cm.get("data")) for cm in setup.kube.configmaps(ns))

        _refused(setup.kube, "Sync", ns, "app", field="spec.repositoryRef.name", leaked=leaked)


# -- Repository.spec.secretRef -------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Team-b's own server: records every request with its credentials, answers 401 asking
    for Basic auth (so a Git client sends what it has) or 403 (a 'Vault')."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self.server.seen.append(  # type: ignore[attr-defined]
            f"{self.command} {self.path} auth={self.headers.get('Authorization')} "
            f"token={self.headers.get('X-Vault-Token')} {body}"
        )
        if self.headers.get("Authorization") or "/v1/" in self.path:
            self.send_response(403)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="team-b"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        return


@contextlib.contextmanager
def _serve(*, tls: bool) -> Iterator[tuple[str, list[str], bytes]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    cert = b""
    scheme = "http"
    if tls:
        cert, key = _self_signed()
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "cert.pem").write_bytes(cert)
            (Path(folder) / "key.pem").write_bytes(key)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(Path(folder) / "cert.pem", Path(folder) / "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield f"{scheme}://127.0.0.1:{port}", server.seen, cert  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    with _serve(tls=False) as (address, seen, _):
        yield address, seen


@pytest.fixture
def tls_recorder() -> Iterator[tuple[str, list[str], bytes]]:
    with _serve(tls=True) as served:
        yield served


def _carries_canary(seen: list[str]) -> list[str]:
    basic = base64.b64encode(f"alice:{CANARY}".encode()).decode()
    return [line for line in seen if CANARY in line or basic in line]


def test_git_credentials_of_another_namespace_never_reach_a_tenant_server(
    setup: Setup,
    operator_factory: Any,
    tls_recorder: tuple[str, list[str], bytes],
    crds_without_name_patterns: None,
) -> None:
    ns = setup.namespace
    address, seen, cert = tls_recorder
    with _namespace(setup.kube, "team-a") as team_a:
        # caFile: team-b's server has a certificate team-a's configuration trusts, as any
        # publicly trusted certificate would be in a real cluster (credentials never go over
        # plain http://, so the attack needs https).
        setup.secret_object(
            "git-auth",
            {"username": "alice", "password": CANARY, "caFile": cert.decode()},
            namespace=team_a,
        )
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "app", "namespace": ns},
                "spec": {
                    "url": f"{address}/team-b.git",
                    "interval": "1s",
                    "secretRef": {"name": f"../../{team_a}/secrets/git-auth"},
                },
            }
        )
        operator_factory(ns)
        _refused(
            setup.kube,
            "Repository",
            ns,
            "app",
            field="spec.secretRef.name",
            leaked=lambda: _carries_canary(seen),
        )
        assert seen == []  # no request with that name at all


# -- KeyRing.spec.vault.auth.tokenSecretRef ------------------------------------------------------


def test_vault_token_of_another_namespace_never_reaches_a_tenant_server(
    setup: Setup,
    operator_factory: Any,
    client: Any,
    recorder: tuple[str, list[str]],
    crds_without_name_patterns: None,
) -> None:
    ns = setup.namespace
    address, seen = recorder
    with _namespace(setup.kube, "team-a") as team_a:
        setup.secret_object("vault-token", {"token": CANARY}, namespace=team_a)
        operator_factory(ns)
        create_keyring(
            client,
            ns,
            backend="vault",
            vault={
                "address": address,
                "auth": {"tokenSecretRef": {"name": f"../../{team_a}/secrets/vault-token"}},
            },
        )
        _refused(
            setup.kube,
            "KeyRing",
            ns,
            "cluster",
            field="spec.vault.auth.tokenSecretRef.name",
            leaked=lambda: _carries_canary(seen),
        )
        assert seen == []


# -- cross-namespace references (finding 14) -----------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        pytest.param({}, False, id="default-refused"),
        pytest.param({"cross_namespace_refs": True}, True, id="admin-allows-cross-namespace"),
        pytest.param({"shared_keyring_namespaces": ["HOME"]}, True, id="admin-shared-namespace"),
    ],
)
def test_keyring_ref_to_another_namespace_needs_the_admins_consent(
    setup: Setup, operator_factory: Any, client: Any, settings: dict[str, Any], served: bool
) -> None:
    """A KeyRing of another (non-admin) namespace listing ``*`` still serves team-b only when
    the operator's admin allows cross-namespace references, or names that namespace as one
    whose KeyRings are shared (the documented sealed-gitops-system flow)."""
    ns = setup.namespace
    with _namespace(setup.kube, "team-a") as team_a:
        settings = {k: [team_a] if v == ["HOME"] else v for k, v in settings.items()}
        operator_factory(ns, namespaces=[ns, team_a], **settings)
        create_keyring(client, team_a, allowedNamespaces=["*"])
        key = active(wait_keys(setup.kube, team_a))
        setup.push({"deploy/db.yaml": sops_secret(key["ageRecipient"], "db", ns, password=CANARY)})
        setup.objects(
            keys_secret=False,
            extra_spec={"decryption": {"keyRingRef": {"name": "cluster", "namespace": team_a}}},
        )
        if served:
            wait_for(lambda: _canary_in_secret(setup.kube, ns), what="the Secret applied")
            return
        sync = wait_for(
            lambda: (
                (s := setup.kube.sync())
                and (r := ready(s))
                and r["status"] == "False"
                and r["reason"] != "DependencyNotReady"
                and s
            ),
            what="the refusal",
        )
        cond = ready(sync) or {}
        assert "spec.decryption.keyRingRef.namespace" in cond["message"], cond
        assert "cross-namespace" in cond["message"], cond
        assert (condition(sync, "Stalled") or {}).get("status") == "True"
        time.sleep(1.0)
        assert not _canary_in_secret(setup.kube, ns)


def test_crds_refuse_path_tricks_in_names() -> None:
    """The API server refuses such objects in the first place: every name and namespace field of
    the three CRDs carries a DNS-1123 ``pattern`` and a ``maxLength``."""
    import re

    root = Path(__file__).resolve().parents[2] / "crds"
    checked = 0

    def walk(node: Any, where: str) -> None:
        nonlocal checked
        if not isinstance(node, dict):
            return
        for key, sub in (node.get("properties") or {}).items():
            here = f"{where}.{key}"
            if key in ("name", "namespace", "serviceAccountName", "targetNamespace") and (
                sub.get("type") == "string"
            ):
                assert "pattern" in sub and "maxLength" in sub, here
                pattern = re.compile(sub["pattern"])
                assert not pattern.search("../../team-a/secrets/x"), here
                assert not pattern.search("x/../y") and pattern.search("team-a"), here
                checked += 1
            walk(sub, here)
        walk(node.get("items"), where + "[]")

    for crd in ("sync.yaml", "repository.yaml", "keyring.yaml"):
        doc = yaml.safe_load((root / crd).read_text())
        walk(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"], crd)
    assert checked >= 8


# -- the one parse: every name field of the three specs ------------------------------------------

_HOSTILE = ["../../team-a/secrets/x", "x/../y", "..", "a%2Fb", "UPPER", "x" * 254, "a\nb"]


def _set(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = doc
    *path, last = dotted.split(".")
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value
    return doc


@pytest.mark.parametrize("value", _HOSTILE)
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("Sync", "spec.repositoryRef.name"),
        ("Sync", "spec.decryption.secretRef.name"),
        ("Sync", "spec.decryption.keyRingRef.name"),
        ("Sync", "spec.decryption.keyRingRef.namespace"),
        ("Sync", "spec.serviceAccountName"),
        ("Sync", "spec.targetNamespace"),
        ("Repository", "spec.secretRef.name"),
        ("Repository", "spec.verify.secretRef.name"),
        ("KeyRing", "spec.vault.auth.tokenSecretRef.name"),
    ],
)
def test_every_name_field_is_checked_when_the_spec_is_parsed(
    kind: str, field: str, value: str
) -> None:
    from sealed_gitops.operator.specs import KeyRingSpec, RepositorySpec, SyncSpec
    from sealed_gitops.plan.names import InvalidName

    parsers: dict[str, Callable[[Mapping[str, Any]], object]] = {
        "Sync": SyncSpec.parse,
        "Repository": RepositorySpec.parse,
        "KeyRing": KeyRingSpec.parse,
    }
    parse = parsers[kind]
    doc: dict[str, Any] = {
        "metadata": {"namespace": "team-b", "name": "app"},
        "spec": {"repositoryRef": {"name": "app"}, "url": "https://git.example/x.git"},
    }
    if kind == "KeyRing":
        doc["spec"] = {"backend": "vault", "vault": {"address": "https://vault.example"}}
    parse(doc)  # valid as it is
    if field.endswith("keyRingRef.namespace"):
        _set(doc, "spec.decryption.keyRingRef.name", "cluster")
    with pytest.raises(InvalidName) as caught:
        parse(_set(doc, field, value))
    assert field.removesuffix(".name") in str(caught.value), caught.value
    assert caught.value.code == "InvalidName"


@pytest.mark.parametrize(("namespace", "name"), [("team-b", ".."), ("..", "x"), ("team-b", ".")])
def test_manifest_paths_refuse_dot_segments(namespace: str, name: str) -> None:
    """Objects from Git reach the API through discovery paths: quoting leaves ``.``/``..``
    alone and the HTTP client would resolve them into another object's path."""
    from sealed_gitops.cluster.discovery import Resource
    from sealed_gitops.plan.names import InvalidName

    configmaps = Resource(group="", version="v1", plural="configmaps", kind="ConfigMap",
                          namespaced=True)  # fmt: skip
    assert configmaps.path(namespace="team-b", name="a/b") == (
        "/api/v1/namespaces/team-b/configmaps/a%2Fb"
    )
    with pytest.raises(InvalidName):
        configmaps.path(namespace=namespace, name=name)


@pytest.mark.parametrize("name", ["x" * 254, "a/b", "%2e%2e", "..", "."])
def test_object_ids_refuse_names_the_api_server_would_not_admit(name: str) -> None:
    """Every object from Git gets an id first: a name no object can have (too long, or one that
    changes the URL it is put into) is refused there, on the fast path as on the slow one."""
    from sealed_gitops.errors import FormatError
    from sealed_gitops.plan import ObjectId

    ObjectId(namespace="team-b", name="x" * 253, group="", kind="ConfigMap")  # the longest
    with pytest.raises(FormatError):
        ObjectId(namespace="team-b", name=name, group="", kind="ConfigMap")
