"""``sealed-gitops reencrypt``: re-wrap SOPS files and re-seal SealedSecrets for the active key.

Why apart from the ``keys`` commands: it works on files of the repository, not on the KeyRing,
and it never sees a private key or a plaintext value: it sends the files' key stanzas and sealed
ciphertexts to the operator in a request ConfigMap and writes back what the operator returns (see
``operator/keyring.py`` and docs/key-rotation.md).
"""

from __future__ import annotations

from pathlib import Path

import click

from sealed_gitops.cli.conventions import DURATION, output_option, rows_json
from sealed_gitops.cli.options import atomic_write
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.reencrypt import groups_from_wire, replace_key_groups
from sealed_gitops.keys.reencrypt_client import (
    exchange,
    replace_sealed,
    request_batches,
    request_items,
)
from sealed_gitops.redact import redact

from .keyring_target import cluster_options, find_target

__all__ = ["REENCRYPT_FIELDS", "reencrypt"]


#: Fields of each row of ``reencrypt --output json``, in this order (a stable interface for tools):
#: the file, ``re-encrypted``, ``unchanged`` or ``failed``, and the operator's (redacted) error.
REENCRYPT_FIELDS = ("file", "result", "error")


@click.command("reencrypt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@cluster_options
@click.option("--rotate-data-key", is_flag=True, help="Also replace each SOPS file's data key.")
@click.option("--timeout", type=DURATION, default="2m", show_default=True,
              help="How long to wait for the operator's answer to each batch.")  # fmt: skip
@output_option("text", "json")
def reencrypt(
    *,
    paths: tuple[Path, ...],
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
    rotate_data_key: bool,
    timeout: float,
    output: str,
) -> None:
    """Re-wrap SOPS files and re-seal SealedSecrets for the KeyRing's active key, in the cluster."""
    target, _ = find_target(keyring, kubeconfig, context, paths[0])
    items = request_items(paths, rotate_data_key=rotate_data_key)
    rows: list[dict[str, str]] = []
    for batch in request_batches(items):
        answers = exchange(
            target.client,
            namespace=target.namespace,
            keyring=target.name,
            items=batch,
            timeout=timeout,
        )
        for answer in answers:
            file = Path(str(answer.get("file")))
            if answer.get("error"):
                error = redact(str(answer["error"]))
                rows.append({"file": str(file), "result": "failed", "error": error})
                if output == "text":
                    click.echo(f"error: {error}", err=True)
                continue
            if not answer.get("changed"):
                rows.append({"file": str(file), "result": "unchanged", "error": ""})
                continue
            if "groups" in answer:
                data = replace_key_groups(
                    file.read_bytes(), groups_from_wire(answer["groups"]), file=str(file)
                )
                atomic_write(file, data)
            elif "content" in answer:
                atomic_write(file, str(answer["content"]).encode("utf-8"))
            elif "documents" in answer:
                atomic_write(file, replace_sealed(file.read_bytes(), list(answer["documents"])))
            rows.append({"file": str(file), "result": "re-encrypted", "error": ""})
            if output == "text":
                click.echo(f"{file}: re-encrypted")
    changed = sum(1 for row in rows if row["result"] == "re-encrypted")
    failed = sum(1 for row in rows if row["result"] == "failed")
    if output == "json":
        click.echo(rows_json(rows, REENCRYPT_FIELDS))
    else:
        click.echo(f"{changed} file(s) re-encrypted, {len(items) - changed - failed} unchanged")
    if failed:
        raise ConfigError(f"{failed} file(s) could not be re-encrypted")
