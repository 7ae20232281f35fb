"""Vault addresses, transit key URIs, and where a Vault token may be sent.

Why apart from :mod:`.vault` (the transit calls): these are the rules a hostile file meets before
any request is made. A stanza in Git names a Vault address and a key path; the address is
compared in one normal form (scheme, host and port, lower-cased: a listed ``https://`` address
does not admit the same host over ``http://``), the CLI's allowed addresses come from
``VAULT_ADDR`` and :data:`ADDRESSES_ENV` only, and a transit URI's engine and key name are checked
as Vault path segments and percent-quoted, so no file can point a token at another endpoint. The
token itself is found as sops finds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from sealed_gitops.crypto.sops.masterkey import vault_path
from sealed_gitops.errors import ConfigError, FormatError

__all__ = [
    "ADDRESSES_ENV",
    "TransitKeyRef",
    "cli_vault_addresses",
    "normalize_address",
    "parse_transit_uri",
    "resolve_vault_token",
]

#: The CLI's list of further Vault addresses its user's token may go to (besides ``VAULT_ADDR``),
#: separated by commas or spaces; ``*`` restores sops' behaviour (any address a file names).
ADDRESSES_ENV = "SEALED_GITOPS_VAULT_ADDRESSES"

# The path part of a sops transit URI: /v1/<engine path, may contain slashes>/keys/<name>
_PATH = re.compile(r"^/v\d+/(?P<engine>.+)/keys/(?P<name>[^/]+)/?$")


@dataclass(frozen=True)
class TransitKeyRef:
    """Where a transit key lives: the three fields a stanza stores."""

    address: str
    engine_path: str
    key_name: str

    @property
    def uri(self) -> str:
        """The URI form sops takes on its command line and in ``.sops.yaml``."""
        return f"{self.address}/v1/{self.engine_path}/keys/{self.key_name}"

    def api_path(self, operation: str) -> str:
        """``/v1/<engine>/<operation>/<key>``, every segment checked and percent-quoted.

        Built here rather than by hvac's transit helpers, which quote with ``/`` left as is.
        """
        engine, key = vault_path(self.engine_path, self.key_name)
        quoted = "/".join(quote(segment, safe="") for segment in engine)
        return f"/v1/{quoted}/{operation}/{quote(key, safe='')}"


def normalize_address(address: str) -> str:
    """``scheme://host[:port]`` lower-cased, without path or trailing slash: compare these."""
    parts = urlsplit(address.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not a Vault address (want http(s)://host:port): {address!r}")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))


def parse_transit_uri(uri: str) -> TransitKeyRef:
    """Split ``http(s)://host:port/v1/ENGINE/keys/NAME`` (ENGINE may contain slashes)."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            "Vault transit URI needs a scheme and host, like "
            f"https://vault.example.com:8200/v1/transit/keys/NAME: {uri!r}"
        )
    match = _PATH.match(parts.path)
    if match is None:
        raise ConfigError(
            "Vault transit URI path must be /v1/ENGINE/keys/NAME "
            f"(a Vault behind a path prefix is not supported, as in sops): {uri!r}"
        )
    engine = match.group("engine").strip("/")
    try:
        vault_path(engine, match.group("name"))
    except FormatError as exc:
        raise ConfigError(f"Vault transit URI {uri!r}: {exc.reason}") from exc
    return TransitKeyRef(
        address=urlunsplit((parts.scheme, parts.netloc, "", "", "")),
        engine_path=engine,
        key_name=match.group("name"),
    )


def cli_vault_addresses(env: Mapping[str, str] | None = None) -> frozenset[str] | None:
    """Where the CLI may send its user's Vault token: ``VAULT_ADDR`` and :data:`ADDRESSES_ENV`.

    ``None`` (any address, as sops does) only when the user wrote ``*`` in that list. An
    address that is not a Vault address is a :class:`ConfigError` naming the variable.
    """
    environ = os.environ if env is None else env
    listed = environ.get(ADDRESSES_ENV, "").replace(",", " ").split()
    if "*" in listed:
        return None
    found: set[str] = set()
    for name, values in (("VAULT_ADDR", [environ.get("VAULT_ADDR", "")]), (ADDRESSES_ENV, listed)):
        for value in values:
            if value.strip():
                try:
                    found.add(normalize_address(value))
                except ConfigError as exc:
                    raise ConfigError(f"{name}: {exc.reason}") from exc
    return frozenset(found)


def resolve_vault_token(
    explicit: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> str | None:
    """The token sops would use: explicit, else ``$VAULT_TOKEN``, else ``~/.vault-token``."""
    if explicit:
        return explicit.strip()
    environ = os.environ if env is None else env
    if environ.get("VAULT_TOKEN"):
        return environ["VAULT_TOKEN"].strip()
    token_file = (home if home is not None else Path.home()) / ".vault-token"
    try:
        text = token_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {token_file}") from exc
    return text or None
