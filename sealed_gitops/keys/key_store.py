"""Where a KeyRing's private keys live: one Secret per key (here), or one Vault KV v2 secret.

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

The Vault store, with the same methods (:class:`KeyStore`), is :mod:`.vault_kv_store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sealed_gitops.errors import ApiConflict, ApiNotFound
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

__all__ = ["KeyStore", "RequestClient", "SecretStore"]

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
