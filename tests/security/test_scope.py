"""Finding 2 of issue 11: an encrypted object must open only where it will land in the cluster.

The attack: team-a and team-b share a KeyRing (team-a's, serving team-b through
``allowedNamespaces``). A strict-scope SealedSecret sealed for ``team-a/db`` is copied into
team-b's repository, and team-b's Sync sets ``targetNamespace: team-b``. The scope used to be
checked against the namespace written in the file, and ``targetNamespace`` moved the object only
afterwards, so team-a's value unsealed into ``team-b/db``. Now the scope is checked against the
namespace and name the object will have in the cluster (after ``targetNamespace``, after the
default to the Sync's namespace, after kustomize's ``namePrefix``), so the Sync fails with a
scope mismatch naming both scopes and the canary reaches no Secret.

SOPS files carry no such binding (their MAC covers the values, not where they are applied); the
KeyRing option ``spec.sops.namespaceBinding: Strict`` adds one, tested at the end.

Everything runs end to end: the operator on the emulator, a Git remote, a KeyRing whose keys the
operator generated, and only the public parts used to seal and encrypt.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.cli.main import cli
from sealed_gitops.cluster import KubeClient
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import PlainSecret, seal_secret
from sealed_gitops.crypto.sealing_keys import load_public_key
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.crypto.sops.tree import Rules
from sealed_gitops.errors import ScopeMismatch
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import build
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.placement import Placement
from tests.keys_lifecycle.conftest import active, create_keyring, wait_keys
from tests.operator.conftest import Setup, ready, wait_for

pytestmark = pytest.mark.e2e


API = "/apis/sealed-gitops.io/v1alpha1"


@dataclass
class Tenants:
    """team-a (``home``, owner of the shared KeyRing ``cluster``) and team-b (``tenant``)."""

    env: Setup
    home: str
    tenant: str
    certificate: str
    recipient: str

    def seal(
        self,
        *,
        name: str,
        namespace: str,
        scope: Scope,
        canary: str,
        keep_namespace: bool = True,
    ) -> str:
        """A SealedSecret sealed for ``namespace/name`` (public key only), as YAML text."""
        public = load_public_key(self.certificate.encode(), source="KeyRing status")
        doc = seal_secret(
            PlainSecret(name=name, namespace=namespace, data={"password": canary.encode()}),
            recipients=[public],
            scope=scope,
        ).to_manifest()
        if not keep_namespace:  # a file that leaves the namespace to the Sync
            doc["metadata"].pop("namespace", None)
            doc["spec"]["template"]["metadata"].pop("namespace", None)
        return yaml.safe_dump(doc, sort_keys=False)

    def sops(self, *, name: str, namespace: str | None, canary: str) -> str:
        """A SOPS-encrypted Secret for the KeyRing's age recipient, as YAML text."""
        metadata: dict[str, str] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "stringData": {"password": canary},
        }
        plain = yaml.safe_dump(doc, sort_keys=False).encode()
        return encrypt_bytes(
            plain, key_groups=[[AgeRecipient(self.recipient)]], file="x.yaml"
        ).decode()

    def sync(self, *, path: str, target: str | None = None, name: str = "app") -> None:
        """team-b's Repository (team-b's remote) and Sync, using the shared KeyRing."""
        spec: dict[str, Any] = {
            "repositoryRef": {"name": "app"},
            "path": path,
            "interval": "1s",
            "retryInterval": "1s",
            "prune": True,
            "decryption": {"keyRingRef": {"name": "cluster", "namespace": self.home}},
        }
        if target:
            spec["targetNamespace"] = target
        with contextlib.suppress(Exception):  # one Repository for several Syncs
            self.env.kube.create(
                {
                    "apiVersion": "sealed-gitops.io/v1alpha1",
                    "kind": "Repository",
                    "metadata": {"name": "app", "namespace": self.tenant},
                    "spec": {
                        "url": f"file://{self.env.remote}",
                        "ref": {"branch": "main"},
                        "interval": "1s",
                    },
                }
            )
        self.env.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": name, "namespace": self.tenant},
                "spec": spec,
            }
        )

    def sync_object(self, name: str = "app") -> dict[str, Any]:
        return self.env.kube.get(f"{API}/namespaces/{self.tenant}/syncs/{name}") or {}

    def failure(self, canary: str, name: str = "app") -> dict[str, Any]:
        """The Sync's Ready condition once it failed (not the start-up wait for its source);
        fails at once if the canary reached a Secret instead: the attack worked."""

        def check() -> dict[str, Any] | None:
            self.canary_nowhere(canary)
            cond = ready(self.sync_object(name))
            if cond and cond["status"] == "False" and cond["reason"] != "DependencyNotReady":
                return cond
            return None

        return dict(wait_for(check, timeout=40, what=f"Sync {name} to fail"))

    def applied(self, secret: str, namespace: str, canary: str) -> bool:
        found = self.env.kube.secret(secret, namespace) or {}
        data = found.get("data") or {}
        return base64.b64decode(data.get("password", "")).decode() == canary

    def canary_nowhere(self, canary: str) -> None:
        """No Secret of either namespace holds the canary (by any name)."""
        for namespace in (self.home, self.tenant):
            answer = self.env.kube.client.request(
                "GET", f"/api/v1/namespaces/{namespace}/secrets", action="list", what="secrets"
            )
            for item in answer.get("items") or []:
                for value in (item.get("data") or {}).values():
                    assert canary not in base64.b64decode(value).decode("utf-8", "replace"), (
                        f"the canary reached Secret {namespace}/{item['metadata']['name']}"
                    )


@pytest.fixture
def tenants(setup: Setup, operator_factory: Any, client: KubeClient) -> Iterator[Tenants]:
    """A shared KeyRing in team-a (``setup.namespace``) that also serves team-b, and an
    operator watching both (tests that need KeyRing options call :func:`make_tenants`)."""
    with make_tenants(setup, operator_factory, client) as made:
        yield made


@contextlib.contextmanager
def make_tenants(
    setup: Setup, operator_factory: Any, client: KubeClient, **keyring_spec: Any
) -> Iterator[Tenants]:
    home = setup.namespace
    tenant = f"team-b-{uuid.uuid4().hex[:8]}"
    setup.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tenant}})
    try:
        # team-a's namespace is the admin's shared-KeyRing namespace (the deployment the
        # attack needs; cross-namespace references are otherwise refused by default).
        operator_factory(home, namespaces=[home, tenant], shared_keyring_namespaces=[home])
        create_keyring(client, home, allowedNamespaces=[tenant], **keyring_spec)
        key = active(wait_keys(setup.kube, home))
        yield Tenants(
            env=setup,
            home=home,
            tenant=tenant,
            certificate=key["sealingCertificate"],
            recipient=key["ageRecipient"],
        )
    finally:
        with contextlib.suppress(Exception):
            setup.kube.delete(f"/api/v1/namespaces/{tenant}")


def _canary() -> str:
    return f"canary-{uuid.uuid4().hex}"


# -- SealedSecret: the scope is checked where the object lands ---------------------------------


@pytest.mark.parametrize(
    ("scope", "sealed_for", "lands_as"),
    [
        (Scope.STRICT, "strict {home}/db", "strict {tenant}/db"),
        (Scope.NAMESPACE_WIDE, "namespace-wide {home}", "namespace-wide {tenant}"),
    ],
)
def test_target_namespace_cannot_move_a_sealed_value_into_another_tenant(
    tenants: Tenants, scope: Scope, sealed_for: str, lands_as: str
) -> None:
    """The attack: team-a's sealed value, copied into team-b's repository, moved by
    ``targetNamespace: team-b``. It used to unseal into team-b/db with team-a's value."""
    canary = _canary()
    copied = tenants.seal(name="db", namespace=tenants.home, scope=scope, canary=canary)
    tenants.env.push({"team-b/db.yaml": copied})
    tenants.sync(path="./team-b", target=tenants.tenant)

    cond = tenants.failure(canary)
    message = cond["message"]
    assert cond["reason"] == "DecryptionFailed", cond
    assert "scope mismatch" in message
    assert sealed_for.format(home=tenants.home) in message, message
    assert lands_as.format(tenant=tenants.tenant) in message, message
    assert canary not in message
    tenants.canary_nowhere(canary)


def test_a_file_without_namespace_is_checked_against_the_sync_namespace(
    tenants: Tenants,
) -> None:
    """A file that names no namespace lands in the Sync's namespace: that is the scope it must
    open under. team-a's value (sealed for team-a/db, namespace removed from the file) is refused
    in team-b; team-b's own value (sealed for team-b/ok) lands there."""
    canary, own = _canary(), _canary()
    tenants.env.push(
        {
            "team-b/db.yaml": tenants.seal(
                name="db",
                namespace=tenants.home,
                scope=Scope.STRICT,
                canary=canary,
                keep_namespace=False,
            ),
            "team-b-own/ok.yaml": tenants.seal(
                name="ok",
                namespace=tenants.tenant,
                scope=Scope.STRICT,
                canary=own,
                keep_namespace=False,
            ),
        }
    )
    tenants.sync(path="./team-b")
    tenants.sync(path="./team-b-own", name="own")

    message = tenants.failure(canary)["message"]
    assert "scope mismatch" in message
    assert "its file names no namespace" in message, message
    assert f"strict {tenants.tenant}/db" in message, message
    tenants.canary_nowhere(canary)
    wait_for(
        lambda: tenants.applied("ok", tenants.tenant, own),
        timeout=40,
        what="team-b's own value, defaulted to team-b, applied",
    )


def test_name_prefix_after_sealing_is_a_scope_mismatch(tenants: Tenants) -> None:
    """kustomize's ``namePrefix`` renames the object after sealing: a strict value opens only
    under the name it will have in the cluster, so the renamed one is refused."""
    canary = _canary()
    tenants.env.push(
        {
            "team-b/db.yaml": tenants.seal(
                name="db", namespace=tenants.tenant, scope=Scope.STRICT, canary=canary
            ),
            "team-b/kustomization.yaml": "namePrefix: x-\nresources: [db.yaml]\n",
        }
    )
    tenants.sync(path="./team-b")
    message = tenants.failure(canary)["message"]
    assert "scope mismatch" in message
    assert f"strict {tenants.tenant}/db" in message, message
    assert f"strict {tenants.tenant}/x-db" in message, message
    tenants.canary_nowhere(canary)


def test_cluster_wide_and_matching_scopes_still_land(tenants: Tenants) -> None:
    """What stays allowed: a cluster-wide value moves by design, and a value sealed for where
    ``targetNamespace`` puts it opens there."""
    wide, own = _canary(), _canary()
    tenants.env.push(
        {
            "team-b/wide.yaml": tenants.seal(
                name="wide", namespace=tenants.home, scope=Scope.CLUSTER_WIDE, canary=wide
            ),
            "team-b/own.yaml": tenants.seal(
                name="own", namespace=tenants.tenant, scope=Scope.STRICT, canary=own
            ),
        }
    )
    tenants.sync(path="./team-b", target=tenants.tenant)
    wait_for(
        lambda: (
            tenants.applied("wide", tenants.tenant, wide)
            and tenants.applied("own", tenants.tenant, own)
        ),
        timeout=40,
        what="cluster-wide and own values applied in team-b",
    )


# -- SOPS: no binding by default; the KeyRing option adds one ----------------------------------


def test_sops_copy_decrypts_anywhere_without_the_keyring_option(tenants: Tenants) -> None:
    """Documented behaviour (docs/security-model.md): a SOPS file carries no namespace binding,
    so with a shared KeyRing team-a's copied file decrypts in team-b (moved by targetNamespace).
    This is the control for the test below: the same attack, refused with the option."""
    canary = _canary()
    tenants.env.push(
        {"team-b/db.yaml": tenants.sops(name="db", namespace=tenants.home, canary=canary)}
    )
    tenants.sync(path="./team-b", target=tenants.tenant)
    wait_for(
        lambda: tenants.applied("db", tenants.tenant, canary),
        timeout=40,
        what="the copied SOPS Secret applied (no binding without the option)",
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("moved", "would land in namespace {tenant}"),
        ("no-namespace", "names no namespace"),
    ],
)
def test_sops_namespace_binding_strict_refuses_a_copied_file(
    setup: Setup, operator_factory: Any, client: KubeClient, case: str, expected: str
) -> None:
    """``spec.sops.namespaceBinding: Strict`` on the KeyRing: a SOPS object decrypted with it
    must name, under its MAC, the namespace it lands in. team-a's copied file (moved by
    targetNamespace) and a file naming no namespace are refused; team-b's own file lands."""
    with make_tenants(
        setup, operator_factory, client, sops={"namespaceBinding": "Strict"}
    ) as tenants:
        canary, own = _canary(), _canary()
        bad = (
            tenants.sops(name="db", namespace=tenants.home, canary=canary)
            if case == "moved"
            else tenants.sops(name="db", namespace=None, canary=canary)
        )
        tenants.env.push(
            {
                "team-b/db.yaml": bad,
                "team-b-own/ok.yaml": tenants.sops(name="ok", namespace=tenants.tenant, canary=own),
            }
        )
        tenants.sync(path="./team-b", target=tenants.tenant)
        tenants.sync(path="./team-b-own", target=tenants.tenant, name="own")

        cond = tenants.failure(canary)
        message = cond["message"]
        assert cond["reason"] == "DecryptionFailed", cond
        assert "namespaceBinding" in message, message
        assert expected.format(tenant=tenants.tenant) in message, message
        if case == "moved":
            assert f"names namespace {tenants.home}" in message, message
        assert canary not in message
        tenants.canary_nowhere(canary)
        wait_for(
            lambda: tenants.applied("ok", tenants.tenant, own),
            timeout=40,
            what="team-b's own SOPS Secret applied under Strict",
        )


# -- the CLI's preview takes the same placement ------------------------------------------------


def test_cli_build_opens_sealed_values_where_target_namespace_puts_them(tmp_path: Path) -> None:
    """``sealed-gitops build --target-namespace`` judges scopes as the operator does: team-a's
    strict value refused when moved to team-b, opened when it stays in team-a."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "sealing.key"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    canary = _canary()
    doc = seal_secret(
        PlainSecret(name="db", namespace="team-a", data={"password": canary.encode()}),
        recipients=[private.public_key()],
        scope=Scope.STRICT,
    ).to_manifest()
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "db.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    runner = CliRunner()
    base = ["build", str(tmp_path / "repo"), "--sealing-key", str(key_file), "--show-secrets"]

    moved = runner.invoke(cli, [*base, "--target-namespace", "team-b"], catch_exceptions=False)
    assert moved.exit_code == 1, moved.output
    assert "scope mismatch" in moved.stderr
    assert "strict team-a/db" in moved.stderr and "strict team-b/db" in moved.stderr
    assert canary not in moved.output

    stays = runner.invoke(cli, [*base, "--target-namespace", "team-a"], catch_exceptions=False)
    assert stays.exit_code == 0, stays.output
    secret = yaml.safe_load(stays.stdout)
    assert secret["metadata"]["namespace"] == "team-a"
    assert base64.b64decode(secret["data"]["password"]).decode() == canary


@pytest.mark.parametrize(
    ("mac_only_encrypted", "accepted"),
    [(False, True), (True, False)],
)
def test_sops_binding_needs_the_namespace_under_the_mac(
    tmp_path: Path, mac_only_encrypted: bool, accepted: bool
) -> None:
    """Strict trusts ``metadata.namespace`` only when the MAC covers it: a file encrypted with
    ``mac_only_encrypted`` and its namespace in clear could be edited by a committer without the
    key, so it is refused even where it names the right namespace."""
    identity = pyrage.x25519.Identity.generate()
    (tmp_path / "age.txt").write_text(f"{identity}\n")
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "team-b"},
        "stringData": {"password": _canary()},
    }
    encrypted = encrypt_bytes(
        yaml.safe_dump(doc, sort_keys=False).encode(),
        key_groups=[[AgeRecipient(str(identity.to_public()))]],
        rules=Rules(encrypted_regex="^(data|stringData)$", mac_only_encrypted=mac_only_encrypted),
        file="db.yaml",
    )
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "db.yaml").write_bytes(encrypted)
    ring = discover_keyring(age_identity_files=[tmp_path / "age.txt"], use_environment=False)
    keys = DecryptionKeys(sops=ring, sops_binding=NamespaceBinding.STRICT)
    placement = Placement(default_namespace="team-b")

    def run() -> list[str]:
        result = build(root=tmp_path, path="deploy", keys=keys, placement=placement)
        return [str(obj.id.namespace) for obj in result.objects]

    if accepted:
        assert run() == ["team-b"]
        return
    with pytest.raises(ScopeMismatch, match="mac_only_encrypted"):
        run()
