"""``sealed-gitops verify PATH...``: the pre-commit check that no secret reaches Git in the clear.

Why it exists: the cheapest leak to stop is the one never committed. This walks files and
directories (``.yaml``, ``.yml``, ``.json``, ``.env``, ``.ini``) and fails when

- a Kubernetes ``Secret`` is neither a SOPS document nor replaced by a ``SealedSecret``;
- a SOPS document has no MAC, a MAC that is not a well-formed ``ENC[AES256_GCM,...]`` value, no
  ``lastmodified``, no master key, or a value under ``data``/``stringData`` of a Secret that its
  own rules say should be encrypted but is not (someone pasted a value into an encrypted file);
- a dotenv, INI or JSON data file (not a Kubernetes object) holds a plaintext value that the
  ``.sops.yaml`` rule matching it, or its own metadata, says must be encrypted
  (:mod:`.verify_checks`);
- with a key that opens the file (the same keys ``decrypt`` would use), the MAC does not match.

Without keys, only presence and format can be checked: a pre-commit hook on a developer laptop
usually has no cluster key, and must still catch the common mistakes. Messages name files and
key paths, never values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from sealed_gitops.cli.conventions import output_option, rows_json
from sealed_gitops.crypto.sops import decrypt_document
from sealed_gitops.errors import (
    KeyProviderError,
    NoMatchingKey,
    NotEncryptedError,
    SealedGitopsError,
)
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.redact import redact
from sealed_gitops.render.loader import load_file

from .options import KeyInputs, key_options
from .verify_checks import ENC_PREFIX, check_data_file, check_metadata, leaves, metadata_rules

__all__ = ["VERIFY_FIELDS", "check_file", "verify", "walk"]

#: Extensions of the files that are checked when a directory is walked.
EXTENSIONS = frozenset({".yaml", ".yml", ".json", ".env", ".ini"})
#: The stores of data files (not Kubernetes manifests), by extension, as sops picks them.
DATA_FORMATS = {".env": "dotenv", ".ini": "ini"}
_SECRET_FIELDS = ("data", "stringData")


def walk(paths: Sequence[Path]) -> Iterator[Path]:
    """The files to check: given files as they are, directories walked (hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith(".") and part not in (".", "..") for part in rel[:-1]):
                    continue
                if child.is_file() and child.name.lower().endswith(tuple(EXTENSIONS)):
                    yield child
        else:
            yield path


def _check_sops(doc: Mapping[str, Any], *, file: str, where: str | None) -> None:
    meta = check_metadata(doc["sops"], file=file, where=where)
    if _is_secret(doc):
        rules = metadata_rules(meta)
        for field in _SECRET_FIELDS:
            for path, value in leaves(doc.get(field), (field,)):
                if value is None or (isinstance(value, str) and value.startswith(ENC_PREFIX)):
                    continue
                if rules.should_encrypt(path, [], False):
                    raise NotEncryptedError(
                        f"{'.'.join(path)} is not encrypted", file=file, location=where
                    )


def _is_secret(doc: Mapping[str, Any]) -> bool:
    return doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1"


def _has_values(doc: Mapping[str, Any]) -> bool:
    return any(doc.get(field) for field in _SECRET_FIELDS)


def _is_manifest(doc: Any) -> bool:
    return isinstance(doc, Mapping) and "apiVersion" in doc and "kind" in doc


def check_file(path: Path, *, keyring: KeyRing | None) -> str:
    """Check one file; raise a SealedGitopsError or return what was checked."""
    file = str(path)
    for suffix, fmt in DATA_FORMATS.items():
        if path.name.lower().endswith(suffix):
            return check_data_file(path, fmt=fmt, keyring=keyring)
    documents = load_file(path, file=file)
    if path.suffix.lower() == ".json" and len(documents) == 1:
        doc = documents[0][1]
        if isinstance(doc, Mapping) and not _is_manifest(doc):
            return check_data_file(path, fmt="json", keyring=keyring, tree=dict(doc))
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


#: Fields of each row of ``verify --output json``, in this order (a stable interface for tools):
#: the file; what was checked (``mac``: MAC verified with a key, ``structure``: SOPS structure
#: only, no key, ``plain``: no secret in it) or ``failed``; and the error, which names key paths,
#: never values.
VERIFY_FIELDS = ("file", "result", "error")


@click.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--no-decrypt",
    is_flag=True,
    help="Check presence and format only, even when a key could verify the MAC.",
)
@output_option("text", "json")
@key_options
def verify(
    *,
    paths: Sequence[Path],
    no_decrypt: bool,
    output: str,
    keys: KeyInputs,
) -> None:
    """Fail when a Secret is not encrypted or a SOPS file's MAC is missing or invalid."""
    ring = None if no_decrypt else keys.keyring()
    rows: list[dict[str, str]] = []
    try:
        for path in walk(paths):
            try:
                kind = check_file(path, keyring=ring)
            except SealedGitopsError as exc:
                error = redact(str(exc.with_file(str(path))))
                rows.append({"file": str(path), "result": "failed", "error": error})
                if output == "text":
                    click.echo(f"error: {error}", err=True)
                continue
            rows.append({"file": str(path), "result": kind, "error": ""})
    finally:
        if ring is not None:
            ring.close()
    checked = Counter(row["result"] for row in rows)
    failures = checked["failed"]
    if output == "json":
        click.echo(rows_json(rows, VERIFY_FIELDS))
    click.echo(
        f"{len(rows)} files checked: {checked['mac']} SOPS with MAC verified, "
        f"{checked['structure']} SOPS checked for structure only (no key), "
        f"{checked['plain']} without secrets, {failures} failed",
        err=True,
    )
    if failures:
        raise click.exceptions.Exit(1)
