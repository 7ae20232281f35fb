"""The public half of a KeyRing in a repository: ``keys/CLUSTER/`` and the ``.sops.yaml`` rule.

Why a module: ``keys fetch`` writes these files, and ``reencrypt``, ``keys list`` and
``keys retire`` read them back to find the cluster without flags. The layout is the one
``keys/README.md`` describes: ``age.txt`` (the active age recipient), ``sealing.crt`` (the active
certificate) and ``keyring.yaml`` (where they came from, and every key's fingerprint and state).

The ``.sops.yaml`` update keeps other clusters' recipients: the rule with the given
``path_regex`` gets this KeyRing's active recipient in place of its older ones, so one rule can
serve several clusters (each ``keys fetch`` adds its own recipient to the same rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sealed_gitops.errors import ConfigError, FormatError

__all__ = [
    "KeyRingRecord",
    "find_records",
    "read_record",
    "update_sops_rule",
    "write_public_keys",
]

RECORD_FILE = "keyring.yaml"
AGE_FILE = "age.txt"
CERT_FILE = "sealing.crt"


@dataclass
class KeyRingRecord:
    """What ``keyring.yaml`` says: the KeyRing, the kubeconfig context, the keys' public ids."""

    namespace: str
    name: str
    context: str | None = None
    keys: list[dict[str, str]] = field(default_factory=list)
    directory: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def read_record(path: Path) -> KeyRingRecord:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FormatError("unreadable keyring record", file=str(path)) from exc
    ref = str((raw.get("keyring") if isinstance(raw, dict) else "") or "")
    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        raise FormatError("keyring: must be NAMESPACE/NAME", file=str(path))
    keys = [dict(k) for k in raw.get("keys") or [] if isinstance(k, dict)]
    return KeyRingRecord(
        namespace, name, context=raw.get("context") or None, keys=keys, directory=path.parent
    )


def find_records(root: Path) -> list[KeyRingRecord]:
    """Every ``keys/*/keyring.yaml`` at ``root`` or the nearest parent that has a ``keys/``."""
    current = root.resolve()
    if current.is_file():
        current = current.parent
    while True:
        found = sorted((current / "keys").glob(f"*/{RECORD_FILE}"))
        if found:
            return [read_record(p) for p in found]
        if current.parent == current or (current / ".git").exists():
            return []
        current = current.parent


def write_public_keys(
    directory: Path,
    *,
    namespace: str,
    name: str,
    context: str | None,
    status_keys: Sequence[Mapping[str, Any]],
) -> dict[str, str]:
    """Write age.txt, sealing.crt and keyring.yaml; returns the active key's status entry."""
    active = next((k for k in status_keys if k.get("state") == "active"), None)
    if active is None:
        raise ConfigError(f"KeyRing {namespace}/{name} publishes no active key yet")
    directory.mkdir(parents=True, exist_ok=True)
    fp = str(active["fingerprint"])
    (directory / AGE_FILE).write_text(
        f"# KeyRing {namespace}/{name}, active key {fp[:16]}\n{active['ageRecipient']}\n",
        encoding="utf-8",
    )
    (directory / CERT_FILE).write_text(str(active["sealingCertificate"]), encoding="utf-8")
    record: dict[str, Any] = {"keyring": f"{namespace}/{name}"}
    if context:
        record["context"] = context
    record["keys"] = [
        {
            "fingerprint": str(k.get("fingerprint")),
            "state": str(k.get("state")),
            "created": str(k.get("created")),
            "ageRecipient": str(k.get("ageRecipient")),
        }
        for k in status_keys
    ]
    (directory / RECORD_FILE).write_text(yaml.safe_dump(record, sort_keys=False), "utf-8")
    return {k: str(v) for k, v in active.items()}


def update_sops_rule(
    config: Path,
    *,
    path_regex: str,
    active_recipient: str,
    known_recipients: Sequence[str],
    encrypted_regex: str = "^(data|stringData)$",
) -> None:
    """Point the rule for ``path_regex`` at the active recipient (creating it first if needed)."""
    raw: Any = {}
    if config.exists():
        try:
            raw = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise FormatError("not valid YAML", file=str(config)) from exc
    if not isinstance(raw, dict):
        raise FormatError("must be a mapping", file=str(config))
    rules = raw.setdefault("creation_rules", [])
    if not isinstance(rules, list):
        raise FormatError("creation_rules must be a list", file=str(config))
    rule = next(
        (r for r in rules if isinstance(r, dict) and r.get("path_regex") == path_regex), None
    )
    if rule is None:
        rule = {"path_regex": path_regex, "encrypted_regex": encrypted_regex}
        rules.insert(0, rule)
    age = rule.get("age") or []
    current = [a.strip() for a in (age.split(",") if isinstance(age, str) else age) if a.strip()]
    old = set(known_recipients)
    kept = [a for a in current if a not in old and a != active_recipient]
    rule["age"] = ",".join([*kept, active_recipient])
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
