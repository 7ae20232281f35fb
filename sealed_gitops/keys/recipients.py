"""Turn recipient strings (flags, ``.sops.yaml`` rules) into MasterKey objects.

Why: the SOPS engine wraps data keys with :class:`~sealed_gitops.crypto.sops.masterkey.MasterKey`
objects and knows nothing of gpg or Vault; the CLI and ``.sops.yaml`` speak in strings (an
``age1...`` recipient, a PGP fingerprint, a transit URI). This module is the translation, and the
one place that decides how a bare string is recognised.

Key groups: a creation rule either lists keys at the top level (one group) or has ``key_groups``,
each a mapping with ``age`` / ``pgp`` / ``hc_vault`` (sops' spelling in ``key_groups``) lists. The
rule object is read by attribute or by key, so the engine's dataclasses and plain dicts both work.

age recipients are ``age1...`` (X25519), ``age1pq1...`` (post-quantum ML-KEM-768 + X25519, as
sops 3.12 writes them) or SSH public keys (``ssh-ed25519 ...``, ``ssh-rsa ...``), as in sops. A
plugin recipient is refused as an "unsupported recipient type" naming the type (see
:mod:`sealed_gitops.crypto.age`). ``SOPS_AGE_RECIPIENTS`` gives default age recipients for
``encrypt`` (:func:`environment_age_recipients`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sealed_gitops.crypto.age import recipient_type, unsupported_recipient
from sealed_gitops.crypto.sops.masterkey import MasterKey
from sealed_gitops.errors import ConfigError, SealedGitopsError
from sealed_gitops.keys.age_identities import AGE_KIND, age_recipient
from sealed_gitops.keys.pgp import GnuPG, PgpMasterKey
from sealed_gitops.keys.vault import DEFAULT_TIMEOUT, VaultTransitKey
from sealed_gitops.keys.vault_addresses import parse_transit_uri

__all__ = [
    "KeyFactory",
    "classify_recipient",
    "environment_age_recipients",
    "key_groups_from_rule",
    "master_key",
    "master_keys",
    "naming_file",
    "split_list",
]

#: sops' variable with default age recipients for ``encrypt`` (comma-separated).
AGE_RECIPIENTS_ENV = "SOPS_AGE_RECIPIENTS"

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
    if recipient_type(value) != "unknown":
        # age1... (X25519) and age1pq1... by crypto.age's own patterns; SSH keys are age
        # recipients in sops; a plugin recipient is age's too, and KeyFactory.age says why it
        # is unsupported
        return AGE_KIND
    if value.startswith(("http://", "https://")):
        return "hc_vault"
    if _PGP.match(value.replace(" ", "")):
        return "pgp"
    raise ConfigError(
        f"unrecognised recipient {value!r}: expected an age1..., age1pq1... or "
        "ssh-ed25519/ssh-rsa recipient, a PGP fingerprint or a Vault transit URI"
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
        text = recipient.strip()
        problem = unsupported_recipient(text)
        if problem is not None:
            shown = text if len(text) <= 64 else text[:24] + "..."
            if recipient_type(text) == "unknown":
                raise ConfigError(
                    f"not an age recipient (age1..., age1pq1... or ssh-ed25519/ssh-rsa): {shown!r}"
                )
            raise ConfigError(
                f"{problem} ({shown}): encrypt such files with sops, or use an age1... X25519, "
                "age1pq1... post-quantum or ssh-ed25519/ssh-rsa recipient"
            )
        return age_recipient(text)

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


def environment_age_recipients(env: Mapping[str, str] | None = None) -> list[str]:
    """``SOPS_AGE_RECIPIENTS`` as a list (empty when unset); ``encrypt`` uses it when no flag
    and no ``.sops.yaml`` rule gives recipients."""
    environ = os.environ if env is None else env
    return split_list(environ.get(AGE_RECIPIENTS_ENV) or None)


@contextmanager
def naming_file(file: str) -> Iterator[None]:
    """Errors raised while turning recipients into keys name ``file`` (if they name none)."""
    try:
        yield
    except SealedGitopsError as exc:
        raise exc.with_file(file) from exc.__cause__


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
