"""``sealed-gitops verify PATH...``: the pre-commit check that no secret reaches Git in the clear.

Why it exists: the cheapest leak to stop is the one never committed. This walks files and
directories (``.yaml``, ``.yml``, ``.json``) and fails when

- a Kubernetes ``Secret`` is neither a SOPS document nor replaced by a ``SealedSecret``;
- a SOPS document has no MAC, a MAC that is not a well-formed ``ENC[AES256_GCM,...]`` value, no
  ``lastmodified``, no master key, or a value under ``data``/``stringData`` of a Secret that its
  own rules say should be encrypted but is not (someone pasted a value into an encrypted file);
- with a key that opens the file (the same keys ``decrypt`` would use), the MAC does not match.

Without keys, only presence and format can be checked: a pre-commit hook on a developer laptop
usually has no cluster key, and must still catch the common mistakes. Messages name files and
key paths, never values.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from sealed_gitops.crypto.sops import Rules, decrypt_document
from sealed_gitops.crypto.sops.masterkey import STANZA_KINDS
from sealed_gitops.errors import (
    FormatError,
    KeyProviderError,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
    SealedGitopsError,
)
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.render.loader import load_file

from .options import KeyInputs, key_options

__all__ = ["check_file", "verify", "walk"]

#: Extensions of the files that are checked when a directory is walked.
EXTENSIONS = frozenset({".yaml", ".yml", ".json"})

_B64 = r"[A-Za-z0-9+/]*={0,2}"
_MAC_RE = re.compile(rf"^ENC\[AES256_GCM,data:({_B64}),iv:({_B64}),tag:({_B64}),type:str\]$")
_ENC_PREFIX = "ENC[AES256_GCM,"
#: the MAC is an upper-case hex SHA-512: 128 bytes of ciphertext; the IV and tag sizes are sops'
_MAC_SIZES = (128, 32, 16)
_SECRET_FIELDS = ("data", "stringData")


def walk(paths: Sequence[Path]) -> Iterator[Path]:
    """The files to check: given files as they are, directories walked (hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith(".") and part not in (".", "..") for part in rel[:-1]):
                    continue
                if child.is_file() and child.suffix.lower() in EXTENSIONS:
                    yield child
        else:
            yield path


def _mac_format_ok(mac: str) -> bool:
    match = _MAC_RE.match(mac)
    if match is None:
        return False
    try:
        sizes = tuple(len(base64.b64decode(g, validate=True)) for g in match.groups())
    except (binascii.Error, ValueError):
        return False
    return sizes == _MAC_SIZES


def _timestamp_ok(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _stanza_count(meta: Mapping[str, Any]) -> int:
    containers = [meta, *[g for g in meta.get("key_groups") or [] if isinstance(g, Mapping)]]
    return sum(
        sum(1 for s in c.get(kind) or [] if isinstance(s, Mapping) and s.get("enc"))
        for c in containers
        for kind in STANZA_KINDS
    )


def _rules(meta: Mapping[str, Any]) -> Rules:
    names = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
    given = {n: str(meta.get(n) or "") for n in names}
    if not any(given.values()):
        given["unencrypted_suffix"] = "_unencrypted"
    return Rules(
        unencrypted_suffix=given["unencrypted_suffix"],
        encrypted_suffix=given["encrypted_suffix"],
        unencrypted_regex=given["unencrypted_regex"],
        encrypted_regex=given["encrypted_regex"],
    )


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child, path)
    else:
        yield path, value


def _check_sops(doc: Mapping[str, Any], *, file: str, where: str | None) -> None:
    meta = doc["sops"]
    if not isinstance(meta, Mapping):
        raise FormatError("the sops metadata is not a mapping", file=file, location=where)
    mac = meta.get("mac")
    if not mac:
        raise MacMismatch("SOPS file without a MAC", file=file, location=where)
    if not isinstance(mac, str) or not _mac_format_ok(mac):
        raise MacMismatch(
            "the MAC is not a well-formed ENC[AES256_GCM,...] value", file=file, location=where
        )
    stamp = meta.get("lastmodified")
    if not isinstance(stamp, str) or not _timestamp_ok(stamp):
        raise FormatError(
            "lastmodified is missing or not an RFC 3339 time", file=file, location=where
        )
    if _stanza_count(meta) == 0:
        raise FormatError("no master key holds the data key", file=file, location=where)
    if _is_secret(doc):
        rules = _rules(meta)
        for field in _SECRET_FIELDS:
            for path, value in _leaves(doc.get(field), (field,)):
                if value is None or (isinstance(value, str) and value.startswith(_ENC_PREFIX)):
                    continue
                if rules.should_encrypt(path, [], False):
                    raise NotEncryptedError(
                        f"{'.'.join(path)} is not encrypted", file=file, location=where
                    )


def _is_secret(doc: Mapping[str, Any]) -> bool:
    return doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1"


def _has_values(doc: Mapping[str, Any]) -> bool:
    return any(doc.get(field) for field in _SECRET_FIELDS)


def check_file(path: Path, *, keyring: KeyRing | None) -> str:
    """Check one file; raise a SealedGitopsError or return what was checked."""
    file = str(path)
    documents = load_file(path, file=file)
    sops_seen = False
    for index, doc in documents:
        if not isinstance(doc, Mapping):
            continue
        where = f"document {index}" if len(documents) > 1 else None
        if "sops" in doc:
            sops_seen = True
            _check_sops(doc, file=file, where=where)
        elif _is_secret(doc) and _has_values(doc):
            raise NotEncryptedError(
                "Kubernetes Secret is not encrypted (use encrypt or seal)",
                file=file,
                location=where,
            )
    if not sops_seen:
        return "plain"
    if keyring is None or len(keyring) == 0:
        return "structure"
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        decrypt_document(path.read_bytes(), unwrapper=keyring, file=file, fmt=fmt)
    except (NoMatchingKey, KeyProviderError):
        # No key here (or its provider is unreachable): the MAC value cannot be checked, which
        # is the normal case on a laptop; the structure checks above still hold.
        return "structure"
    return "mac"


@click.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--no-decrypt",
    is_flag=True,
    help="Check presence and format only, even when a key could verify the MAC.",
)
@key_options
def verify(
    *,
    paths: Sequence[Path],
    no_decrypt: bool,
    keys: KeyInputs,
) -> None:
    """Fail when a Secret is not encrypted or a SOPS file's MAC is missing or invalid."""
    ring = None if no_decrypt else keys.keyring()
    failures = 0
    checked: dict[str, int] = {}
    try:
        for path in walk(paths):
            try:
                kind = check_file(path, keyring=ring)
            except SealedGitopsError as exc:
                failures += 1
                click.echo(f"error: {exc.with_file(str(path))}", err=True)
                continue
            checked[kind] = checked.get(kind, 0) + 1
    finally:
        if ring is not None:
            ring.close()
    total = failures + sum(checked.values())
    click.echo(
        f"{total} files checked: {checked.get('mac', 0)} SOPS with MAC verified, "
        f"{checked.get('structure', 0)} SOPS checked for structure only (no key), "
        f"{checked.get('plain', 0)} without secrets, {failures} failed",
        err=True,
    )
    if failures:
        raise click.exceptions.Exit(1)
