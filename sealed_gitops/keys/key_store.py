"""Where a KeyRing's private keys live: one Secret per key, or one Vault KV v2 secret.

Why a module shared by the operator and the CLI: the operator generates and rotates keys, the CLI
backs them up and restores them, and both must read and write the same shape. The Secret store
talks to the API through anything with the project client's ``request`` method (a Protocol, so
this package does not import ``cluster/``); the Vault store uses hvac, with every hvac failure
mapped to :class:`KeyProviderError` here, at the boundary.

Secret layout (one per key, in the KeyRing's namespace, owned by the KeyRing so deleting the
KeyRing deletes them)::

    metadata.labels:      sealed-gitops.io/keyring: NAME, sealed-gitops.io/key-state: STATE
    metadata.annotations: sealed-gitops.io/key-fingerprint, key-created, key-retired
    data:                 age.agekey, tls.key (PKCS#1 PEM), tls.crt

Vault layout: one KV v2 secret at ``spec.vault.kvPath`` whose data maps each fingerprint to the
JSON of :meth:`ClusterKey.record`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sealed_gitops.errors import ApiConflict, ApiNotFound, ConfigError, KeyProviderError
from sealed_gitops.keys.cluster_keys import (
    CREATED_ANNOTATION,
    FINGERPRINT_ANNOTATION,
    KEYRING_LABEL,
    RETIRED_ANNOTATION,
    STATE_LABEL,
    ClusterKey,
    KeyState,
    decode_secret_data,
    secret_name,
)
from sealed_gitops.plan.names import segment
from sealed_gitops.redact import register

__all__ = [
    "KeyStore",
    "RequestClient",
    "SecretStore",
    "VaultKvStore",
    "VaultSession",
    "default_kv_path",
    "keyring_kv_path",
    "kv_path_allowed",
    "split_kv_path",
    "vault_session",
]

GROUP_VERSION = "sealed-gitops.io/v1alpha1"


class RequestClient(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        action: str,
        what: str,
        sensitive: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]: ...


class KeyStore(Protocol):
    def load(self) -> list[ClusterKey]: ...

    def save(self, keys: Sequence[ClusterKey]) -> None: ...

    def delete_retired(self, fingerprint: str) -> bool: ...


class SecretStore:
    """Keys as Secrets of the KeyRing ``namespace/name`` (owned by it when ``owner_uid`` is set)."""

    def __init__(
        self, client: RequestClient, *, namespace: str, name: str, owner_uid: str | None = None
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.owner_uid = owner_uid

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{segment(self.namespace)}/secrets"

    def _list(self) -> list[dict[str, Any]]:
        answer = self.client.request(
            "GET",
            self._path,
            query={"labelSelector": f"{KEYRING_LABEL}={self.name}"},
            action="list",
            what=f"key Secrets of KeyRing {self.namespace}/{self.name}",
            sensitive=True,
        )
        return list(answer.get("items") or [])

    def load(self) -> list[ClusterKey]:
        keys = []
        for secret in self._list():
            meta = secret.get("metadata") or {}
            source = f"Secret {self.namespace}/{meta.get('name')}"
            data = decode_secret_data(secret.get("data") or {}, source=source)
            keys.append(ClusterKey.from_secret(secret, data))
        return keys

    def _metadata(self, key: ClusterKey) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "labels": {
                KEYRING_LABEL: self.name,
                STATE_LABEL: key.state.value,
                "app.kubernetes.io/managed-by": "sealed-gitops",
            },
            "annotations": {
                FINGERPRINT_ANNOTATION: key.fingerprint,
                CREATED_ANNOTATION: key.created,
                RETIRED_ANNOTATION: key.retired,
            },
        }
        if self.owner_uid:
            meta["ownerReferences"] = [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "KeyRing",
                    "name": self.name,
                    "uid": self.owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ]
        return meta

    def save(self, keys: Sequence[ClusterKey]) -> None:
        """Create missing key Secrets; update the state labels of existing ones."""
        existing = {str((s.get("metadata") or {}).get("name")): s for s in self._list()}
        for key in keys:
            name = secret_name(self.name, key.fingerprint)
            wanted = self._metadata(key)
            current = existing.get(name)
            if current is None:
                self.client.request(
                    "POST",
                    self._path,
                    body={
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": name, "namespace": self.namespace, **wanted},
                        "type": "Opaque",
                        "data": key.secret_data(),
                    },
                    action="create",
                    what=f"Secret {self.namespace}/{name}",
                    sensitive=True,
                )
                continue
            meta = current.get("metadata") or {}
            same = all(
                (meta.get(part) or {}).get(k) == v
                for part in ("labels", "annotations")
                for k, v in wanted[part].items()
            )
            if not same:
                patch = {"labels": wanted["labels"], "annotations": wanted["annotations"]}
                self.client.request(
                    "PATCH",
                    f"{self._path}/{segment(name)}",
                    body={"metadata": patch},
                    content_type="application/merge-patch+json",
                    action="update",
                    what=f"Secret {self.namespace}/{name}",
                )

    def delete_retired(self, fingerprint: str) -> bool:
        """Delete the key's Secret if it is still retired; False when it changed (or is not).

        The Secret is read again and deleted with its resourceVersion as a precondition, so a
        key restored or changed since the caller loaded it is never the one deleted.
        """
        name = secret_name(self.name, fingerprint)
        try:
            secret = self.client.request(
                "GET",
                f"{self._path}/{segment(name)}",
                action="read",
                what=f"Secret {name}",
                sensitive=True,
            )
            meta = secret.get("metadata") or {}
            if (meta.get("labels") or {}).get(STATE_LABEL) != KeyState.RETIRED.value:
                return False
            preconditions = {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
            self.client.request(
                "DELETE",
                f"{self._path}/{segment(name)}",
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "preconditions": {k: v for k, v in preconditions.items() if v},
                },
                action="delete",
                what=f"Secret {self.namespace}/{name}",
            )
        except ApiNotFound:
            return True  # already gone: nothing private is left to delete
        except ApiConflict:
            return False
        return True


def default_kv_path(*, namespace: str, name: str) -> str:
    """Where KeyRing ``namespace/name`` keeps its keys in Vault: derived from its own name, so
    no two KeyRings share a path unless the admin allows it (issue 11, finding 5)."""
    return f"secret/data/sealed-gitops/{namespace}/{name}"


def keyring_kv_path(vault: Mapping[str, Any], *, namespace: str, name: str) -> str:
    """``spec.vault.kvPath`` of KeyRing ``namespace/name``, or where its keys live by default.

    One place for the default, so the operator that writes the keys and the CLI that backs them
    up and restores them look at the same secret. Whether the operator may use a written path
    is :func:`kv_path_allowed`'s question.
    """
    return str(vault.get("kvPath") or default_kv_path(namespace=namespace, name=name))


#: characters of one KV path segment: enough for names, nothing that changes the path's meaning
_KV_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def split_kv_path(path: str) -> tuple[str, str]:
    """``secret/data/sealed-gitops/cluster`` -> (mount ``secret``, path ``sealed-gitops/cluster``).

    The ``data/`` segment of the KV v2 API path is optional here. ``.`` and ``..`` segments and
    characters outside ``[A-Za-z0-9_.-]`` are refused: Vault and its HTTP client would resolve or
    re-read them, so the path checked would not be the path read.
    """
    parts = [p for p in path.strip().strip("/").split("/") if p]
    for part in parts:
        if part in (".", "..") or not _KV_SEGMENT.fullmatch(part):
            raise ConfigError(f"spec.vault.kvPath {path[:80]!r}: segment {part[:40]!r} refused")
    if len(parts) < 2:
        raise ConfigError(f"spec.vault.kvPath {path!r} must be MOUNT/PATH (KV v2)")
    mount, rest = parts[0], parts[1:]
    if rest and rest[0] == "data":
        rest = rest[1:]
    if not rest:
        raise ConfigError(f"spec.vault.kvPath {path!r} names no secret under the mount")
    return mount, "/".join(rest)


def kv_path_allowed(path: str, *, namespace: str, name: str, prefixes: Sequence[str] = ()) -> bool:
    """Whether KeyRing ``namespace/name`` may keep its keys at ``path``: its own derived path,
    or a path below one of the admin's ``prefixes`` (``{namespace}`` and ``{name}`` in a prefix
    stand for the KeyRing's). Compared segment by segment after :func:`split_kv_path`."""
    mount, rest = split_kv_path(path)
    wanted = [mount, *rest.split("/")]
    own_mount, own_rest = split_kv_path(default_kv_path(namespace=namespace, name=name))
    if wanted == [own_mount, *own_rest.split("/")]:
        return True
    for prefix in prefixes:
        filled = prefix.replace("{namespace}", namespace).replace("{name}", name)
        p_mount, p_rest = split_kv_path(filled.rstrip("/") + "/x")
        head = [p_mount, *p_rest.split("/")[:-1]]
        if len(wanted) > len(head) and wanted[: len(head)] == head:
            return True
    return False


class VaultKvStore:
    """Keys in one Vault (or OpenBao) KV v2 secret; ``client`` is an authenticated hvac.Client."""

    def __init__(self, client: Any, *, kv_path: str, address: str) -> None:
        self.client = client
        self.mount, self.path = split_kv_path(kv_path)
        self.address = address

    def _fail(self, action: str, exc: Exception) -> KeyProviderError:
        return KeyProviderError(
            f"Vault {self.address}: cannot {action} {self.mount}/{self.path} ({type(exc).__name__})"
        )

    def load(self) -> list[ClusterKey]:
        import hvac.exceptions

        try:
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return []
        except Exception as exc:
            raise self._fail("read", exc) from exc
        data = ((answer or {}).get("data") or {}).get("data") or {}
        keys = []
        for fp, text in sorted(data.items()):
            register(str(text))
            try:
                record = json.loads(str(text))
            except json.JSONDecodeError as exc:
                raise KeyProviderError(f"Vault entry {fp} is not JSON") from exc
            keys.append(ClusterKey.from_record(record, source=f"Vault entry {fp}"))
        return keys

    def save(self, keys: Sequence[ClusterKey]) -> None:
        data = {k.fingerprint: json.dumps(k.record(), sort_keys=True) for k in keys}
        try:
            self.client.secrets.kv.v2.create_or_update_secret(
                path=self.path, mount_point=self.mount, secret=data
            )
        except Exception as exc:
            raise self._fail("write", exc) from exc

    def delete_retired(self, fingerprint: str) -> bool:
        """Drop a retired key's entry, then destroy the older versions that still hold it.

        KV v2 keeps earlier versions of a secret, and every version this store wrote holds every
        key of its time, so removing the entry from the newest version alone would leave the
        private key readable in the history. Each version is a full snapshot and the newest one
        holds every key that still exists, so the older ones are destroyed: first those before
        the current version (if the token may not destroy, nothing has changed yet and the next
        pass tries again), then the one this write superseded. The write is check-and-set on the
        version read, so a key restored meanwhile is never the one dropped.
        """
        import hvac.exceptions

        try:
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return True
        except Exception as exc:
            raise self._fail("read", exc) from exc
        body = (answer or {}).get("data") or {}
        data = dict(body.get("data") or {})
        version = int((body.get("metadata") or {}).get("version") or 0)
        text = data.get(fingerprint)
        if text is None:
            return True
        register(str(text))
        try:
            state = json.loads(str(text)).get("state")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise KeyProviderError(f"Vault entry {fingerprint} is not a JSON object") from exc
        if state != KeyState.RETIRED.value:
            return False
        self._destroy(range(1, version))
        del data[fingerprint]
        try:
            self.client.secrets.kv.v2.create_or_update_secret(
                path=self.path, mount_point=self.mount, secret=data, cas=version
            )
        except hvac.exceptions.InvalidRequest:
            return False  # check-and-set: written meanwhile; decide again on the next pass
        except Exception as exc:
            raise self._fail("write", exc) from exc
        self._destroy([version])
        return True

    def _destroy(self, versions: Iterable[int]) -> None:
        wanted = [v for v in versions if v > 0]
        if not wanted:
            return
        try:
            self.client.secrets.kv.v2.destroy_secret_versions(
                path=self.path, versions=wanted, mount_point=self.mount
            )
        except Exception as exc:
            raise KeyProviderError(
                f"Vault {self.address}: cannot destroy old versions of {self.mount}/{self.path} "
                f"({type(exc).__name__}); the token needs 'update' on "
                f"{self.mount}/destroy/{self.path}"
            ) from exc


@dataclass(frozen=True)
class VaultSession:
    """An authenticated hvac client and how long its token lives.

    ``lease_seconds`` is what a Kubernetes-auth login granted (None: a given token, whose
    lifetime is its owner's business; 0: a token that never expires). The operator logs in again
    before it runs out (``operator/vault_login.py``), so a cached client never holds a dead token.
    """

    client: Any
    lease_seconds: float | None = None


def vault_session(
    address: str,
    *,
    token: str | None = None,
    kubernetes_role: str | None = None,
    jwt: str | None = None,
    mount: str = "kubernetes",
    timeout: float = 10.0,
) -> VaultSession:
    """An hvac client for ``address``, with a token or logged in through Kubernetes auth."""
    import hvac

    # token "" rather than None: hvac would otherwise read VAULT_TOKEN / ~/.vault-token itself.
    client = hvac.Client(url=address, token=token or "", timeout=timeout)
    if not kubernetes_role:
        return VaultSession(client)
    try:
        answer = client.auth.kubernetes.login(kubernetes_role, jwt or "", mount_point=mount)
    except Exception as exc:  # hvac and requests failures: unreachable, refused
        raise KeyProviderError(
            f"Vault {address}: Kubernetes login as role {kubernetes_role} failed "
            f"({type(exc).__name__})"
        ) from exc
    lease: float | None = None
    with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
        lease = float(answer["auth"]["lease_duration"])
    return VaultSession(client, lease)
