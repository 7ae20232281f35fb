"""A pure parser for ``.sops.yaml`` creation rules.

Why pure: turning a PGP fingerprint or a Vault URI into a working key needs gpg or the network,
which ``crypto/`` never touches; this module only answers "which rule applies to this path and what
does it ask for", as strings. ``sealed_gitops.keys`` turns the strings into master keys (age
recipients can be made with :mod:`sealed_gitops.crypto.age`). First matching rule wins, as in sops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.crypto.patterns import compile_pattern
from sealed_gitops.errors import ConfigError, SealedGitopsError

from .document import StoreSettings
from .tree import RULE_FIELDS, Rules, TreeBranch
from .values import Comment
from .yaml_load import load_yaml

__all__ = [
    "CreationRule",
    "KeyGroupSpec",
    "load_creation_rules",
    "load_store_settings",
    "match_creation_rule",
]


@dataclass(frozen=True)
class KeyGroupSpec:
    """One key group's recipients, as strings."""

    age: tuple[str, ...] = ()
    pgp: tuple[str, ...] = ()
    hc_vault: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreationRule:
    path_regex: str = ""
    key_groups: tuple[KeyGroupSpec, ...] = ()
    shamir_threshold: int = 0
    rules: Rules = field(default_factory=Rules)
    #: True when the rule names an encryption rule (else the Kubernetes default may apply)
    has_rule: bool = False


def _strings(value: Any, *, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ConfigError(f".sops.yaml: {what} must be a string or a list of strings")


def _group(raw: Any) -> KeyGroupSpec:
    if not isinstance(raw, dict):
        raise ConfigError(".sops.yaml: a key group must be a mapping")
    return KeyGroupSpec(
        age=_strings(raw.get("age"), what="age"),
        pgp=_strings(raw.get("pgp"), what="pgp"),
        hc_vault=_strings(raw.get("hc_vault") or raw.get("hc_vault_transit_uri"), what="hc_vault"),
    )


def _text(raw: dict[Any, Any], name: str) -> str:
    """A scalar field as text. A list or mapping is refused, not ``str()``-ed: through YAML
    aliases a few hundred bytes can be a list of 10**9 items (found by tests/security/test_fuzz)."""
    value = raw.get(name)
    if isinstance(value, list | dict):
        raise ConfigError(f".sops.yaml: {name} must be a string")
    return str(value or "")


def _checked_patterns(texts: dict[str, str], *, where: str) -> None:
    """Compile every regex of a rule now (RE2, as sops' Go does): a committer wrote them, so they
    must cost linear time, and a bad one is refused when the file is read, naming the field."""
    for name, text in texts.items():
        if name.endswith("_regex") and text:
            compile_pattern(text, what=f".sops.yaml: {where}.{name}", error=ConfigError)


def _rule(raw: Any, index: int) -> CreationRule:
    if not isinstance(raw, dict):
        raise ConfigError(".sops.yaml: each creation rule must be a mapping")
    texts = {n: _text(raw, n) for n in RULE_FIELDS}
    if sum(1 for t in texts.values() if t) > 1:
        raise ConfigError(".sops.yaml: a creation rule sets more than one encryption rule")
    path_regex = _text(raw, "path_regex")
    _checked_patterns({"path_regex": path_regex, **texts}, where=f"creation_rules[{index}]")
    if raw.get("key_groups"):
        if not isinstance(raw["key_groups"], list):
            raise ConfigError(".sops.yaml: key_groups must be a list")
        groups = tuple(_group(g) for g in raw["key_groups"])
    else:
        groups = (
            KeyGroupSpec(
                age=_strings(raw.get("age"), what="age"),
                pgp=_strings(raw.get("pgp"), what="pgp"),
                hc_vault=_strings(raw.get("hc_vault_transit_uri"), what="hc_vault_transit_uri"),
            ),
        )
    threshold = raw.get("shamir_threshold") or 0
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ConfigError(".sops.yaml: shamir_threshold must be a positive integer")
    return CreationRule(
        path_regex=path_regex,
        key_groups=groups,
        shamir_threshold=threshold,
        rules=Rules(**texts, mac_only_encrypted=raw.get("mac_only_encrypted") is True),
        has_rule=any(texts.values()),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, TreeBranch):
        return {k: _plain(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, Comment)]
    return value


def _config_mapping(text: str) -> dict[Any, Any]:
    try:
        documents = load_yaml(text)
    except SealedGitopsError as exc:
        raise ConfigError(f".sops.yaml is not valid YAML: {exc.reason}") from None
    raw = _plain(documents[0]) if documents else {}
    if not isinstance(raw, dict):
        raise ConfigError(".sops.yaml must be a mapping")
    return raw


def _indent(stores: dict[Any, Any], name: str, *, default: int) -> int:
    section = stores.get(name)
    if section is None:
        return default
    if not isinstance(section, dict):
        raise ConfigError(f".sops.yaml: stores.{name} must be a mapping")
    value = section.get("indent")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 64:
        raise ConfigError(f".sops.yaml: stores.{name}.indent must be an integer from -1 to 64")
    return value


def load_store_settings(text: str) -> StoreSettings:
    """The ``stores:`` section of a ``.sops.yaml``: how sops writes each format.

    ``yaml.indent`` (0 or absent: sops' 4; negative refused like sops), ``json.indent`` and
    ``json_binary.indent`` (absent or -1: a tab; 0 and up: that many spaces).
    """
    stores = _config_mapping(text).get("stores")
    if stores is None:
        return StoreSettings()
    if not isinstance(stores, dict):
        raise ConfigError(".sops.yaml: stores must be a mapping")
    yaml_indent = _indent(stores, "yaml", default=0)
    if yaml_indent < 0:
        raise ConfigError(".sops.yaml: YAML negative indentation is not accepted")
    return StoreSettings(
        yaml_indent=yaml_indent or 4,
        json_indent=_indent(stores, "json", default=-1),
        json_binary_indent=_indent(stores, "json_binary", default=-1),
    )


def load_creation_rules(text: str) -> list[CreationRule]:
    """Parse the ``creation_rules`` of a ``.sops.yaml`` text.

    Read with the SOPS YAML reader (go-yaml's scalar rules, as sops reads this file, with its
    nesting and alias limits), not ``yaml.safe_load``: a committer writes this file, and PyYAML's
    constructor raised IndexError, KeyError or AttributeError on tagged scalars such as a bare
    ``!!int`` and RecursionError on deep nesting (found by tests/security/test_fuzz).
    """
    raw = _config_mapping(text)
    rules = raw.get("creation_rules")
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ConfigError(".sops.yaml: creation_rules must be a list")
    return [_rule(r, i) for i, r in enumerate(rules)]


def match_creation_rule(rules: list[CreationRule], path: str) -> CreationRule | None:
    """The first rule whose ``path_regex`` matches (searches, like Go's MatchString)."""
    for index, rule in enumerate(rules):
        if not rule.path_regex:
            return rule
        what = f".sops.yaml: creation_rules[{index}].path_regex"
        if compile_pattern(rule.path_regex, what=what, error=ConfigError).search(path):
            return rule
    return None
