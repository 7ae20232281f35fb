"""A KeyRing's private keys in one Vault (or OpenBao) KV v2 secret, and the Vault session.

Why apart from :mod:`.key_store` (the Secret store): the Vault store has its own questions, all
about paths and tokens: which KV path a KeyRing may use (its own derived path, or one below a
prefix the admin allows, compared segment by segment so ``..`` cannot climb out), and how the
operator logs in (a token, or Kubernetes auth with a lease it renews). Every hvac failure is
mapped to :class:`KeyProviderError` here, at the boundary; the token never reaches a message.

Layout: one KV v2 secret at ``spec.vault.kvPath`` whose data maps each fingerprint to the JSON
of :meth:`ClusterKey.record`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import ConfigError, KeyProviderError
from sealed_gitops.keys.cluster_keys import (
    ClusterKey,
    KeyState,
)
from sealed_gitops.redact import register

__all__ = [
    "VaultKvStore",
    "VaultSession",
    "default_kv_path",
    "keyring_kv_path",
    "kv_path_allowed",
    "split_kv_path",
    "vault_session",
]


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
    before it runs out (``operator/keyring_access.py``), so a cached client never holds a dead
    token.
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
