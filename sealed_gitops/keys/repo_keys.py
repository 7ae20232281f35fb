"""The public half of a KeyRing in a repository: ``keys/CLUSTER/`` and the ``.sops.yaml`` rule.

Why a module: ``keys fetch`` writes these files, and ``reencrypt``, ``keys list`` and
``keys retire`` read them back to find the cluster without flags. The layout is the one
``keys/README.md`` describes: ``age.txt`` (the active age recipient), ``sealing.crt`` (the active
certificate) and ``keyring.yaml`` (where they came from, and every key's fingerprint and state).

The ``.sops.yaml`` edit is :mod:`.sops_config_edit`: it adds this KeyRing's active recipient to
the repository's own rules and changes nothing else.
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
    "active_key",
    "find_records",
    "read_record",
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


def active_key(status_keys: Sequence[Mapping[str, Any]], *, keyring: str) -> Mapping[str, Any]:
    """The status entry of the active key; refused while the KeyRing publishes none."""
    active = next((k for k in status_keys if k.get("state") == "active"), None)
    if active is None:
        raise ConfigError(f"KeyRing {keyring} publishes no active key yet")
    return active


def write_public_keys(
    directory: Path,
    *,
    namespace: str,
    name: str,
    context: str | None,
    status_keys: Sequence[Mapping[str, Any]],
) -> dict[str, str]:
    """Write age.txt, sealing.crt and keyring.yaml; returns the active key's status entry."""
    active = active_key(status_keys, keyring=f"{namespace}/{name}")
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
