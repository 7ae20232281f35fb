"""``sealed-gitops seal`` and ``unseal``: Sealed Secrets compatible sealing from the command line.

Why this module exists: it is the user's side of ``crypto/sealed*.py`` and ``keys/sealing.py``,
shaped like kubeseal so its users can switch without relearning: a Secret manifest in, a
SealedSecret out (YAML by default), ``--cert`` for the cluster's certificate, ``--raw`` for one
value, ``--merge-into`` to update a file. What kubeseal cannot do is added as flags: several
``--cert`` (one file, several clusters), ``--key`` on merge (unchanged values keep their
ciphertext), and ``unseal`` with the exported controller key, offline.

This module only reads files, parses flags and prints; every decision is made in the layers below.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.cli.conventions import output_file_option, output_option
from sealed_gitops.crypto.sealed import Scope, scope_label, seal_value
from sealed_gitops.crypto.sealed_document import (
    PlainSecret,
    parse_sealed_secret,
    parse_secret,
    scope_from_annotations,
    seal_secret,
    secret_manifest,
)
from sealed_gitops.crypto.sealed_merge import merge_into
from sealed_gitops.crypto.sealing_keys import load_private_keys, load_public_key
from sealed_gitops.errors import ConfigError, FormatError, SealedGitopsError
from sealed_gitops.keys.sealing import SealingKeyring

__all__ = ["seal", "unseal"]

_SCOPES = [scope.value for scope in Scope]
_STDIN = "-"


def _read(path: str) -> bytes:
    if path == _STDIN:
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _documents(path: str) -> list[dict[str, Any]]:
    try:
        docs = [doc for doc in yaml.safe_load_all(_read(path)) if doc is not None]
    except yaml.YAMLError as exc:
        raise FormatError("not valid YAML or JSON", file=path) from exc
    for doc in docs:
        if not isinstance(doc, dict):
            raise FormatError("each document must be a mapping", file=path)
    return docs


def _certificates(paths: Sequence[str]) -> list[rsa.RSAPublicKey]:
    return [load_public_key(_read(path), source=path) for path in paths]


def _keyring(paths: Iterable[str]) -> SealingKeyring:
    keys: list[rsa.RSAPrivateKey] = []
    for path in paths:
        keys.extend(load_private_keys(_read(path), source=path))
    return SealingKeyring(keys)


def _render(manifests: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return "".join(json.dumps(m, indent=2) + "\n" for m in manifests)
    return "".join(
        "---\n" + yaml.safe_dump(m, sort_keys=False, default_flow_style=False, width=1 << 30)
        for m in manifests
    )


def _emit(text: str, output_file: str | Path | None) -> None:
    if output_file is None:
        click.echo(text, nl=False)
        return
    # Write beside the target and rename, so a failure never leaves half a file (and
    # `-w` may name the file being merged into, which was already read).
    target = Path(output_file)
    fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _apply_overrides(secret: PlainSecret, *, name: str | None, namespace: str | None) -> None:
    if name:
        secret.name = name
        secret.metadata["name"] = name
    if namespace:
        if secret.namespace and secret.namespace != namespace:
            raise ConfigError(
                f"namespace mismatch: the Secret is in {secret.namespace!r}, "
                f"--namespace says {namespace!r}"
            )
        secret.namespace = namespace
        secret.metadata["namespace"] = namespace


def _seal_raw(
    *,
    from_file: str | None,
    certs: Sequence[str],
    scope: Scope,
    name: str | None,
    namespace: str | None,
) -> str:
    if from_file is None:
        raise ConfigError("--raw needs --from-file")
    if len(certs) != 1:
        raise ConfigError("--raw seals for exactly one --cert")
    if scope is not Scope.CLUSTER_WIDE and not namespace:
        raise ConfigError(f"--raw with scope {scope.value} needs --namespace")
    if scope is Scope.STRICT and not name:
        raise ConfigError("--raw with scope strict needs --name")
    label = scope_label(scope, namespace=namespace or "", name=name or "")
    public = _certificates(certs)[0]
    return seal_value(_read(from_file), public_key=public, label=label) + "\n"


@click.command("seal")
@click.argument("file", required=False, default=_STDIN)
@click.option(
    "--cert",
    "certs",
    multiple=True,
    required=True,
    metavar="CERT.pem",
    help="Certificate (or public key) to seal for; repeat to seal for several clusters.",
)
@click.option(
    "--scope",
    type=click.Choice(_SCOPES),
    default=None,
    help="Where the values may be opened (default: the Secret's annotations, or strict).",
)
@click.option(
    "--merge-into",
    "merge_path",
    metavar="SEALED.yaml",
    help="Update this SealedSecret with the Secret's values.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="With --merge-into: private key to open the file, so unchanged values keep "
    "their ciphertext.",
)
@click.option("--raw", is_flag=True, help="Seal one value (--from-file) and print it in base64.")
@click.option("--from-file", "from_file", metavar="F", help="With --raw: the value to seal.")
@click.option("--name", default=None, help="Override (or, with --raw, give) the Secret's name.")
@click.option("-n", "--namespace", default=None, help="The Secret's namespace, if it has none.")
@output_file_option(help="Write here, not stdout (-o is the format).")
@output_option("yaml", "json", dest="output_format")
def seal(
    *,
    file: str,
    certs: tuple[str, ...],
    scope: str | None,
    merge_path: str | None,
    keys: tuple[str, ...],
    raw: bool,
    from_file: str | None,
    name: str | None,
    namespace: str | None,
    output_file: Path | None,
    output_format: str,
) -> None:
    """Seal a Secret manifest (FILE, or - for stdin) into a SealedSecret."""
    chosen = Scope(scope) if scope else None
    if raw:
        _emit(
            _seal_raw(
                from_file=from_file,
                certs=certs,
                scope=chosen or Scope.STRICT,
                name=name,
                namespace=namespace,
            ),
            output_file,
        )
        return
    if keys and not merge_path:
        raise ConfigError("--key is only used with --merge-into")
    recipients = _certificates(certs)
    docs = _documents(file)
    if not docs:
        raise FormatError("no Secret found", file=file)
    try:
        secrets = [parse_secret(doc, file=file) for doc in docs]
        if merge_path:
            manifests = [
                _merge(
                    secrets, merge_path=merge_path, keys=keys, scope=chosen, recipients=recipients
                )
            ]
        else:
            manifests = []
            for secret in secrets:
                _apply_overrides(secret, name=name, namespace=namespace)
                if not secret.data:
                    raise FormatError(f"Secret {secret.name!r} has no data to seal")
                effective = chosen or scope_from_annotations(secret.metadata.get("annotations"))
                manifests.append(
                    seal_secret(secret, recipients=recipients, scope=effective).to_manifest()
                )
    except SealedGitopsError as exc:
        exc.with_file(file)
        raise
    _emit(_render(manifests, output_format), output_file)


def _merge(
    secrets: list[PlainSecret],
    *,
    merge_path: str,
    keys: Sequence[str],
    scope: Scope | None,
    recipients: Sequence[rsa.RSAPublicKey],
) -> dict[str, Any]:
    if len(secrets) != 1:
        raise ConfigError("--merge-into takes exactly one Secret")
    targets = _documents(merge_path)
    if len(targets) != 1:
        raise FormatError("expected exactly one SealedSecret", file=merge_path)
    old = parse_sealed_secret(targets[0], file=merge_path)
    old_values = None
    if keys:
        opened = _keyring(keys).unseal(old, file=merge_path)
        old_values = opened.values
        for value_key, fp in opened.primary_key_ids.items():
            old.key_ids.setdefault(value_key, fp)
    try:
        merged = merge_into(
            old, secrets[0], recipients=recipients, scope=scope or old.scope, old_values=old_values
        )
    except SealedGitopsError as exc:
        exc.with_file(merge_path)
        raise
    return merged.to_manifest()


@click.command("unseal")
@click.argument("file")
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="PEM private key (PKCS#1/PKCS#8) or a kubernetes.io/tls Secret manifest "
    "(e.g. an exported Sealed Secrets controller key); repeatable.",
)
@click.option(
    "-n", "--namespace", default=None, help="Namespace for SealedSecrets that do not name one."
)
@output_file_option(help="Write here, not stdout (-o is the format).")
@output_option("yaml", "json", dest="output_format")
def unseal(
    *,
    file: str,
    keys: tuple[str, ...],
    namespace: str | None,
    output_file: Path | None,
    output_format: str,
) -> None:
    """Open a SealedSecret file offline and print the Secret it holds."""
    keyring = _keyring(keys)
    manifests = []
    for doc in _documents(file):
        sealed_doc = parse_sealed_secret(doc, file=file)
        if sealed_doc.namespace is None and namespace:
            sealed_doc.namespace = namespace
        result = keyring.unseal(sealed_doc, file=file)
        try:
            manifests.append(secret_manifest(sealed_doc, result.values))
        except SealedGitopsError as exc:
            exc.with_file(file)
            raise
    _emit(_render(manifests, output_format), output_file)
