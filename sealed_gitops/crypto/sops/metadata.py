"""The ``sops:`` metadata block: master-key stanzas, key groups, rules, MAC and timestamps.

Why a module of its own: sops writes this block field by field in its Go struct order (not
alphabetically), writes key groups only when there is more than one, and defaults to
``unencrypted_suffix: _unencrypted`` when no rule is set. Reading and writing it in exactly that
shape keeps our files diff-clean against sops' and sops' files readable by us.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sealed_gitops.errors import FormatError

from .masterkey import STANZA_KINDS, KeyStanza, check_stanza
from .tree import RULE_FIELDS, Rules, TreeBranch
from .values import Comment

__all__ = ["DEFAULT_UNENCRYPTED_SUFFIX", "SOPS_VERSION", "Metadata", "parse_metadata"]

#: What sops assumes (and writes) when a file names no encryption rule.
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"

#: The sops version we claim compatibility with in the ``version`` field.
SOPS_VERSION = "3.11.0"

# Struct order of sops' stores.metadata; key kinds of a single group go where sops puts them.
_TOP_KINDS_BEFORE_MAC = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
_GROUP_ORDER = ("pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
_GROUP_ALWAYS = ("hc_vault", "age")
_KINDS = (*STANZA_KINDS, "hckms")


@dataclass
class Metadata:
    key_groups: list[list[KeyStanza]] = field(default_factory=list)
    shamir_threshold: int = 0
    lastmodified: str = ""
    mac: str = ""
    rules: Rules = field(default_factory=Rules)
    version: str = SOPS_VERSION

    def key_ids(self) -> list[str]:
        return [s.key_id for group in self.key_groups for s in group]

    def with_rules_default(self) -> Metadata:
        r = self.rules
        if any(getattr(r, name) for name in RULE_FIELDS):
            return self
        return replace(self, rules=replace(r, unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX))

    def to_branch(self, *, json_style: bool) -> TreeBranch:
        out = TreeBranch()
        if self.shamir_threshold:
            out.append(("shamir_threshold", self.shamir_threshold))
        single = len(self.key_groups) == 1
        if not single and self.key_groups:
            groups = []
            for group in self.key_groups:
                g = TreeBranch()
                for kind in _GROUP_ORDER:
                    stanzas = [_stanza_branch(s) for s in group if s.kind == kind]
                    if stanzas:
                        g.append((kind, stanzas))
                    elif kind in _GROUP_ALWAYS:
                        g.append((kind, None if json_style else []))
                groups.append(g)
            out.append(("key_groups", groups))
        group = self.key_groups[0] if single else []
        for kind in _TOP_KINDS_BEFORE_MAC:
            stanzas = [_stanza_branch(s) for s in group if s.kind == kind]
            if stanzas:
                out.append((kind, stanzas))
        out.append(("lastmodified", self.lastmodified))
        out.append(("mac", self.mac))
        pgp = [_stanza_branch(s) for s in group if s.kind == "pgp"]
        if pgp:
            out.append(("pgp", pgp))
        for name in RULE_FIELDS:
            text = getattr(self.rules, name)
            if text:
                out.append((name, text))
        if self.rules.mac_only_encrypted:
            out.append(("mac_only_encrypted", True))
        out.append(("version", self.version))
        return out


def _stanza_branch(stanza: KeyStanza) -> TreeBranch:
    return TreeBranch((str(k), v) for k, v in stanza.data.items())


def _plain(value: Any) -> Any:
    if isinstance(value, TreeBranch):
        return {k: _plain(v) for k, v in value if isinstance(k, str)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, Comment)]
    return value


def _stanzas(container: dict[str, Any]) -> list[KeyStanza]:
    found = []
    for kind in _KINDS:
        entries = container.get(kind) or []
        if not isinstance(entries, list):
            raise FormatError(f"sops metadata: {kind} must be a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise FormatError(f"sops metadata: a {kind} entry must be a mapping")
            # an hc_vault stanza names a Vault path: checked now, before any URL is built
            found.append(check_stanza(KeyStanza(kind, entry)))
    return found


def parse_metadata(branch: TreeBranch) -> Metadata:
    """Turn the ``sops`` branch of a document into :class:`Metadata` (rules defaulted like sops)."""
    raw = _plain(branch)
    if not isinstance(raw, dict):
        raise FormatError("sops metadata must be a mapping")
    groups_raw = raw.get("key_groups")
    if groups_raw:
        if not isinstance(groups_raw, list):
            raise FormatError("sops metadata: key_groups must be a list")
        groups = [_stanzas(g) for g in groups_raw if isinstance(g, dict)]
    else:
        groups = [_stanzas(raw)]
    rules: dict[str, Any] = {}
    for name in RULE_FIELDS:
        value = raw.get(name) or ""
        if not isinstance(value, str):
            raise FormatError(f"sops metadata: {name} must be a string")
        rules[name] = value
    if sum(1 for v in rules.values() if v) > 1:
        raise FormatError("sops metadata sets more than one encryption rule")
    threshold = raw.get("shamir_threshold") or 0
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise FormatError("sops metadata: shamir_threshold must be an integer")
    meta = Metadata(
        key_groups=groups,
        shamir_threshold=threshold,
        lastmodified=str(raw.get("lastmodified") or ""),
        mac=str(raw.get("mac") or ""),
        rules=Rules(**rules, mac_only_encrypted=raw.get("mac_only_encrypted") is True),
        version=str(raw.get("version") or ""),
    )
    return meta.with_rules_default()
