"""Turn recipient strings (flags, ``.sops.yaml`` rules) into MasterKey objects.

Why: the SOPS engine wraps data keys with :class:`~sealed_gitops.crypto.sops.masterkey.MasterKey`
objects and knows nothing of gpg or Vault; the CLI and ``.sops.yaml`` speak in strings (an
``age1...`` recipient, a PGP fingerprint, a transit URI). This module is the translation, and the
one place that decides how a bare string is recognised.

Key groups: a creation rule either lists keys at the top level (one group) or has ``key_groups``,
each a mapping with ``age`` / ``pgp`` / ``hc_vault`` (sops' spelling in ``key_groups``) lists. The
rule object is read by attribute or by key, so the engine's dataclasses and plain dicts both work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sealed_gitops.crypto.sops.masterkey import MasterKey
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.age_identities import AGE_KIND, age_recipient
from sealed_gitops.keys.pgp import GnuPG, PgpMasterKey
from sealed_gitops.keys.vault import DEFAULT_TIMEOUT, VaultTransitKey, parse_transit_uri

__all__ = [
    "KeyFactory",
    "classify_recipient",
    "key_groups_from_rule",
    "master_key",
    "master_keys",
    "split_list",
]

_AGE = re.compile(r"^age1[02-9ac-hj-np-z]{20,}$")
_PGP = re.compile(r"^(0x)?[0-9A-Fa-f]{16,40}$")


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """sops accepts ``"a,b"`` or a YAML list (whose items may themselves hold commas)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


def classify_recipient(text: str) -> str:
    """The stanza kind a recipient string stands for: ``age``, ``pgp`` or ``hc_vault``."""
    value = text.strip()
    if _AGE.match(value):
        return AGE_KIND
    if value.startswith(("http://", "https://")):
        return "hc_vault"
    if _PGP.match(value.replace(" ", "")):
        return "pgp"
    raise ConfigError(
        f"unrecognised recipient {value!r}: expected an age1... recipient, a PGP fingerprint "
        "or a Vault transit URI"
    )


class KeyFactory:
    """Makes MasterKeys that share one GnuPG home and one Vault token (and connection pool)."""

    def __init__(
        self,
        *,
        gnupg_home: GnuPG | None = None,
        vault_token: str | None = None,
        vault_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.gnupg_home = gnupg_home or GnuPG()
        self._vault_token = vault_token
        self._vault_timeout = vault_timeout

    def age(self, recipient: str) -> MasterKey:
        if not _AGE.match(recipient.strip()):
            raise ConfigError(f"not an age X25519 recipient: {recipient!r}")
        return age_recipient(recipient.strip())

    def pgp(self, fingerprint: str) -> MasterKey:
        return PgpMasterKey(fingerprint, gnupg_home=self.gnupg_home)

    def vault(self, uri: str) -> MasterKey:
        return VaultTransitKey(
            parse_transit_uri(uri), token=self._vault_token, timeout=self._vault_timeout
        )

    def make(self, recipient: str, *, kind: str | None = None) -> MasterKey:
        kind = kind or classify_recipient(recipient)
        if kind == AGE_KIND:
            return self.age(recipient)
        if kind == "pgp":
            return self.pgp(recipient)
        if kind == "hc_vault":
            return self.vault(recipient)
        raise ConfigError(f"master keys of kind {kind!r} are only supported through sops")


def master_key(recipient: str, *, factory: KeyFactory | None = None) -> MasterKey:
    """One recipient string (kind recognised from its shape) as a MasterKey."""
    return (factory or KeyFactory()).make(recipient)


def master_keys(
    *,
    age: Iterable[str] = (),
    pgp: Iterable[str] = (),
    vault: Iterable[str] = (),
    factory: KeyFactory | None = None,
) -> list[MasterKey]:
    """One key group from the CLI's flags (each flag value may hold a comma-separated list)."""
    f = factory or KeyFactory()
    keys: list[MasterKey] = []
    keys += [f.age(r) for r in split_list(list(age))]
    keys += [f.pgp(r) for r in split_list(list(pgp))]
    keys += [f.vault(r) for r in split_list(list(vault))]
    return keys


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj and obj[name] is not None:
                return obj[name]
        elif getattr(obj, name, None) is not None:
            return getattr(obj, name)
    return None


def _group_keys(group: Any, f: KeyFactory) -> list[MasterKey]:
    keys: list[MasterKey] = []
    keys += [f.age(r) for r in split_list(_field(group, "age"))]
    keys += [f.pgp(r) for r in split_list(_field(group, "pgp"))]
    vault = _field(group, "hc_vault", "hc_vault_transit_uri", "hc_vault_uris", "vault")
    keys += [f.vault(r) for r in split_list(vault)]
    for kind in ("kms", "gcp_kms", "azure_keyvault", "azure_kv"):
        if _field(group, kind):
            raise ConfigError(
                f"creation rule uses {kind} keys: encrypt such files with the sops binary"
            )
    return keys


def key_groups_from_rule(rule: Any, *, factory: KeyFactory | None = None) -> list[list[MasterKey]]:
    """The key groups of a creation rule as lists of MasterKeys (one group without key_groups)."""
    f = factory or KeyFactory()
    groups = _field(rule, "key_groups")
    # Without key_groups the rule's own keys form the one group.
    result = [_group_keys(g, f) for g in groups] if groups else [_group_keys(rule, f)]
    result = [g for g in result if g]
    if not result:
        raise ConfigError("the creation rule names no age, pgp or hc_vault key")
    return result
