"""Vault / OpenBao transit master keys for SOPS (``hc_vault`` stanzas), through hvac.

Why transit: the data key is wrapped by a key that never leaves Vault, so access to a file is
access to a Vault policy, revocable at any time.

Wire format, as sops writes it so files interoperate: the data key is base64-encoded (standard
alphabet, padded), sent as ``plaintext`` to ``POST /v1/<engine_path>/encrypt/<key_name>``, and the
returned ``vault:vN:...`` ciphertext is the stanza's ``enc``. The stanza is ``{vault_address,
engine_path, key_name, created_at, enc}``; ``vault_address`` is scheme, host and port only.

A security rule that sops does not have: the stanza names the Vault address, and a file in Git is
input from whoever can push, so the address in a file never decides alone where a token goes
(issue 11, finding 4). An unwrapper built with ``allowed_addresses`` sends its token only to those
addresses (scheme included: a listed ``https://`` address does not admit the same host over
``http://``) and refuses the others with an error naming the address, before any request. The
operator always passes its ``--vault-address`` list, empty by default (then no token leaves); the
CLI passes :func:`cli_vault_addresses`: ``VAULT_ADDR`` and ``SEALED_GITOPS_VAULT_ADDRESSES``, so a
hostile file in a pull request cannot collect the reviewer's token either.

The stanza's ``engine_path`` and ``key_name`` become the URL path; they are checked as Vault path
segments (``crypto.sops.masterkey.vault_path``) and each segment is percent-quoted here, so
``key_name: ../../auth/token/revoke-self`` can no longer reach another Vault endpoint (finding 9).

Every hvac and transport error is mapped here; every call has a timeout. Addresses, transit
URIs and where a token may go are :mod:`.vault_addresses`.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, FormatError, IntegrityError, KeyProviderError
from sealed_gitops.keys.vault_addresses import (
    TransitKeyRef,
    normalize_address,
    parse_transit_uri,
    resolve_vault_token,
)

__all__ = ["DEFAULT_TIMEOUT", "VAULT_KIND", "VaultTransitKey", "VaultUnwrapper"]

VAULT_KIND = "hc_vault"

#: Seconds for each HTTP call to Vault. A reconcile must not hang on a dead Vault; 10 s is long
#: enough for a loaded server across regions and short enough to fail a reconcile visibly.
DEFAULT_TIMEOUT = 10.0


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Clients:
    """hvac clients by address, so a keyring talks to each Vault over one connection pool."""

    def __init__(self, *, token: str | None, timeout: float, namespace: str | None = None) -> None:
        self._token = token
        self._timeout = timeout
        self._namespace = namespace or None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, address: str) -> Any:
        key = normalize_address(address)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                import hvac  # here, not at the top: every CLI start would pay for it

                # token "" rather than None: with None hvac would read VAULT_TOKEN and
                # ~/.vault-token itself, and the operator must only use the token it was given.
                # TLS settings (VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT) are hvac's, as
                # they are the Vault client's in sops.
                client = hvac.Client(
                    url=key,
                    token=self._token or "",
                    timeout=self._timeout,
                    namespace=self._namespace,
                )
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            adapter = getattr(client, "adapter", None)
            if adapter is not None and hasattr(adapter, "close"):
                adapter.close()


def _call(what: str, ref: TransitKeyRef, fn: Any, /, **kwargs: Any) -> Mapping[str, Any]:
    """Run one hvac call and turn every failure into the project's errors.

    Vault's error texts name paths and policies, never the payload, but they are still kept out
    of the message except for the short, known reasons below.
    """
    import hvac.exceptions

    key_id = ref.uri
    try:
        response = fn(**kwargs)
    except hvac.exceptions.Unauthorized as exc:
        raise KeyProviderError(
            f"Vault at {ref.address} refused the token for {what} (unauthorized)", key_id=key_id
        ) from exc
    except hvac.exceptions.Forbidden as exc:
        raise KeyProviderError(
            f"Vault at {ref.address} denied {what} (permission denied or bad token)",
            key_id=key_id,
        ) from exc
    except hvac.exceptions.InvalidPath as exc:
        raise KeyProviderError(
            f"Vault at {ref.address} has no transit key {ref.key_name!r} under {ref.engine_path!r}",
            key_id=key_id,
        ) from exc
    except hvac.exceptions.InvalidRequest as exc:
        text = str(exc).lower()
        if what == "decrypt" and any(
            word in text for word in ("authentication failed", "invalid ciphertext", "base64")
        ):
            raise IntegrityError(
                "Vault transit could not decrypt the stanza (tampered, or another key)",
                key_id=key_id,
            ) from exc
        if "no existing key" in text or "encryption key not found" in text:
            raise KeyProviderError(
                f"Vault at {ref.address} has no transit key {ref.key_name!r} "
                f"under {ref.engine_path!r}",
                key_id=key_id,
            ) from exc
        raise KeyProviderError(
            f"Vault at {ref.address} rejected the transit {what} request", key_id=key_id
        ) from exc
    except hvac.exceptions.VaultError as exc:
        raise KeyProviderError(
            f"Vault at {ref.address} failed the transit {what} ({type(exc).__name__})",
            key_id=key_id,
        ) from exc
    except OSError as exc:
        # requests' ConnectionError and Timeout are OSErrors.
        raise KeyProviderError(f"Vault is unreachable at {ref.address}", key_id=key_id) from exc
    data = response.get("data") if isinstance(response, Mapping) else None
    if not isinstance(data, Mapping):
        raise KeyProviderError(
            f"Vault at {ref.address} returned no data for the transit {what}", key_id=key_id
        )
    return data


class VaultTransitKey:
    """A Vault transit recipient (:class:`~sealed_gitops.crypto.sops.masterkey.MasterKey`)."""

    kind = VAULT_KIND

    def __init__(
        self,
        ref: TransitKeyRef,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        namespace: str | None = None,
        clients: _Clients | None = None,
    ) -> None:
        self.ref = ref
        self._clients = clients or _Clients(
            token=resolve_vault_token(token), timeout=timeout, namespace=namespace
        )

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        namespace: str | None = None,
    ) -> VaultTransitKey:
        return cls(parse_transit_uri(uri), token=token, timeout=timeout, namespace=namespace)

    @property
    def key_id(self) -> str:
        return self.ref.uri

    def wrap(self, data_key: bytes) -> KeyStanza:
        client = self._clients.get(self.ref.address)
        data = _call(
            "encrypt",
            self.ref,
            client.adapter.post,
            url=self.ref.api_path("encrypt"),
            json={"plaintext": base64.b64encode(data_key).decode("ascii")},
        )
        ciphertext = data.get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext.startswith("vault:"):
            raise KeyProviderError(
                f"Vault at {self.ref.address} returned no transit ciphertext", key_id=self.key_id
            )
        return KeyStanza(
            kind=VAULT_KIND,
            data={
                "vault_address": self.ref.address,
                "engine_path": self.ref.engine_path,
                "key_name": self.ref.key_name,
                "created_at": _now_rfc3339(),
                "enc": ciphertext,
            },
        )

    def __repr__(self) -> str:
        return f"VaultTransitKey({self.key_id})"


class VaultUnwrapper:
    """Unwraps ``hc_vault`` stanzas with one token (a keyring provider).

    ``allowed_addresses`` None: any address a stanza names (sops' behaviour, for callers that
    trust every file they open). Otherwise only stanzas whose address is listed are sent to
    Vault; any other raises :class:`KeyProviderError` naming the address and ``allowed_by`` (where
    the list comes from, so the message says how to change it), and nothing is sent. An error
    rather than "no key here": another stanza of the file may still open it, and when none does
    the user learns why instead of reading "no key".
    """

    kinds = frozenset({VAULT_KIND})

    def __init__(
        self,
        *,
        token: str | None,
        allowed_addresses: Collection[str] | None = None,
        allowed_by: str = "the allowed Vault addresses",
        timeout: float = DEFAULT_TIMEOUT,
        namespace: str | None = None,
    ) -> None:
        self._clients = _Clients(token=token, timeout=timeout, namespace=namespace)
        self._allowed_by = allowed_by
        self._allowed = (
            None
            if allowed_addresses is None
            else frozenset(normalize_address(a) for a in allowed_addresses)
        )

    @property
    def clients(self) -> _Clients:
        """Shared with :class:`VaultTransitKey` objects made for the same token."""
        return self._clients

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        if stanza.kind != VAULT_KIND:
            return None
        d = stanza.data
        ref = TransitKeyRef(
            address=str(d.get("vault_address", "")).rstrip("/"),
            engine_path=str(d.get("engine_path", "")).strip("/"),
            key_name=str(d.get("key_name", "")),
        )
        if not ref.engine_path or not ref.key_name:
            raise IntegrityError(
                "hc_vault stanza lacks engine_path or key_name", key_id=stanza.key_id
            )
        try:
            # Parsing checked it already; a stanza may also come from elsewhere (re-encrypt).
            path = ref.api_path("decrypt")
        except FormatError as exc:
            raise IntegrityError(exc.reason, key_id=stanza.key_id) from exc
        try:
            address = normalize_address(ref.address)
        except ConfigError as exc:
            raise IntegrityError(
                "hc_vault stanza has no valid vault_address", key_id=stanza.key_id
            ) from exc
        if self._allowed is not None and address not in self._allowed:
            raise KeyProviderError(
                f"Vault address {address} is not one of {self._allowed_by}: "
                "the Vault token was not sent there",
                key_id=stanza.key_id,
            )
        enc = stanza.enc
        if not enc.startswith("vault:"):
            raise IntegrityError("hc_vault stanza holds no transit ciphertext", key_id=ref.uri)
        client = self._clients.get(address)
        data = _call("decrypt", ref, client.adapter.post, url=path, json={"ciphertext": enc})
        plaintext = data.get("plaintext")
        if not isinstance(plaintext, str):
            raise KeyProviderError(
                f"Vault at {ref.address} returned no transit plaintext", key_id=ref.uri
            )
        try:
            return base64.b64decode(plaintext, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise IntegrityError(
                "Vault returned a data key that is not base64", key_id=ref.uri
            ) from exc

    def close(self) -> None:
        self._clients.close()

    def __repr__(self) -> str:
        allowed = "any" if self._allowed is None else ",".join(sorted(self._allowed))
        return f"VaultUnwrapper(addresses={allowed})"
