"""``sealed-gitops keys backup`` and ``keys restore``: a KeyRing's private keys, out and back in.

Why apart from :mod:`.keys_cmds`: these are the only commands that read or write private keys,
on purpose, with the caller's own credentials; keeping them in one small module keeps that
surface easy to review. A backup is written only encrypted to the age recipient given (never the
plain keys to disk), and a restore registers what it opened with :mod:`sealed_gitops.redact`
before anything else can print it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click
import pyrage
import yaml

from sealed_gitops.cli.conventions import output_file_option
from sealed_gitops.cli.options import atomic_write
from sealed_gitops.crypto.age import parse_identities
from sealed_gitops.errors import ConfigError, FormatError
from sealed_gitops.keys.cluster_keys import ClusterKey, KeyState, format_time
from sealed_gitops.keys.key_store import KeyStore, SecretStore
from sealed_gitops.keys.vault_kv_store import VaultKvStore, keyring_kv_path, vault_session
from sealed_gitops.redact import register

from .keyring_target import Target, cluster_options, find_target

__all__ = ["BACKUP_KIND", "backup", "restore"]

#: The operator re-reads its KeyRing when this annotation changes (a restore asks it to).
REQUESTED_AT = "sealed-gitops.io/requested-at"
#: ``kind`` of the (decrypted) backup document, checked before a restore trusts its contents.
BACKUP_KIND = "KeyRingBackup"


def _store(target: Target, body: dict[str, Any], *, owner: bool) -> KeyStore:
    spec = body.get("spec") or {}
    meta = body.get("metadata") or {}
    if (spec.get("backend") or "kubernetes") == "vault":
        vault = spec.get("vault") or {}
        session = vault_session(str(vault.get("address")), token=os.environ.get("VAULT_TOKEN"))
        return VaultKvStore(
            session.client,
            kv_path=keyring_kv_path(vault, namespace=target.namespace, name=target.name),
            address=str(vault.get("address")),
        )
    return SecretStore(
        target.client,
        namespace=target.namespace,
        name=target.name,
        owner_uid=str(meta.get("uid")) if owner else None,
    )


@click.command("backup")
@click.option("--to", "recipient", required=True, help="age recipient of the offline key.")
@output_file_option(help="Where the encrypted backup is written.", required=True, dest="output")
@cluster_options
def backup(
    *,
    recipient: str,
    output: Path,
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Export the KeyRing's private keys, encrypted to an offline age recipient."""
    try:
        to = pyrage.x25519.Recipient.from_str(recipient.strip())
    except Exception as exc:
        raise ConfigError(f"invalid age recipient {recipient!r}") from exc
    target, _ = find_target(keyring, kubeconfig, context, Path.cwd())
    body = target.get()
    stored = _store(target, body, owner=False).load()
    document = {
        "kind": BACKUP_KIND,
        "keyring": f"{target.namespace}/{target.name}",
        "created": format_time(dt.datetime.now(dt.UTC)),
        "keys": [k.record() for k in stored],
    }
    plain = yaml.safe_dump(document, sort_keys=False).encode()
    armored = pyrage.encrypt(plain, [to], armored=True)
    atomic_write(output, armored, private=True)
    click.echo(f"{output}: {len(stored)} key(s) of {target.describe()}, encrypted to {recipient}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--identity",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="age identity file of the backup recipient (default: $SOPS_AGE_KEY_FILE).",
)
@cluster_options
def restore(
    *,
    file: Path,
    identity: Path | None,
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Bring backed-up keys back into a KeyRing (which must exist)."""
    ident_path = identity or (
        Path(os.environ["SOPS_AGE_KEY_FILE"]) if os.environ.get("SOPS_AGE_KEY_FILE") else None
    )
    if ident_path is None:
        raise ConfigError("give --identity (or set SOPS_AGE_KEY_FILE) to open the backup")
    identities = parse_identities(ident_path.read_text(encoding="utf-8"))
    try:
        plain = pyrage.decrypt(file.read_bytes(), identities)
    except Exception as exc:
        raise FormatError("the backup does not open with that identity", file=str(file)) from exc
    register(plain)
    document = yaml.safe_load(plain)
    if not isinstance(document, dict) or document.get("kind") != BACKUP_KIND:
        raise FormatError(f"not a {BACKUP_KIND}", file=str(file))
    restored = [
        ClusterKey.from_record(r, source=f"{file} key {i}")
        for i, r in enumerate(document.get("keys") or [])
    ]
    target, _ = find_target(
        keyring or str(document.get("keyring")), kubeconfig, context, Path.cwd()
    )
    body = target.get()
    store = _store(target, body, owner=True)
    current = store.load()
    known = {k.fingerprint for k in restored}
    keep = [k for k in current if k.fingerprint not in known]
    if any(k.state is KeyState.ACTIVE for k in restored):
        keep = [k.with_state(KeyState.PREVIOUS) if k.state is KeyState.ACTIVE else k for k in keep]
    store.save([*restored, *keep])
    target.annotate({REQUESTED_AT: dt.datetime.now(dt.UTC).isoformat()})
    click.echo(f"restored {len(restored)} key(s) into {target.describe()}")
