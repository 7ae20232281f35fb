"""``sealed-gitops import flux``: Flux's source and Kustomization objects become ours.

Why: a team moving from Flux has its ``GitRepository`` and ``Kustomization`` objects in Git or in
the cluster, and its SOPS files encrypted for keys that a Secret already holds. This command reads
those objects (multi-document YAML files, or the cluster's) and prints equivalent ``Repository`` and
``Sync`` objects, keeping the decryption Secret, so nothing is re-encrypted. What cannot carry over
is said per object and field on stderr (and in ``--output json``), never dropped in silence. The
conversion itself is pure and lives in ``flux_import``; this module reads and writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from sealed_gitops.cli.conventions import output_file_option, output_option
from sealed_gitops.cli.flux_import import Conversion, convert
from sealed_gitops.cli.options import atomic_write
from sealed_gitops.errors import ApiNotFound, ConfigError
from sealed_gitops.plan import names
from sealed_gitops.render.loader import load_file

if TYPE_CHECKING:
    from sealed_gitops.cluster import KubeClient

__all__ = ["FLUX_PLURALS", "flux_objects_from_cluster", "import_flux", "import_group"]

#: (group, plural, versions newest first) of the Flux kinds read from a cluster.
FLUX_PLURALS = (
    ("source.toolkit.fluxcd.io", "gitrepositories", ("v1", "v1beta2")),
    ("kustomize.toolkit.fluxcd.io", "kustomizations", ("v1", "v1beta2")),
)


@click.group("import")
def import_group() -> None:
    """Convert another tool's objects into Repository and Sync objects."""


def _from_files(files: tuple[Path, ...]) -> Iterator[tuple[str, Any]]:
    for path in files:
        # The loader refuses duplicate keys, alias bombs and oversized files, naming the file
        # and the document, like any other file this project reads.
        for index, doc in load_file(path, file=str(path)):
            yield f"{path}, document {index}", doc


def flux_objects_from_cluster(
    client: KubeClient, *, namespace: str | None
) -> Iterator[tuple[str, Any]]:
    """Every GitRepository and Kustomization (of ``namespace``, or all), in the newest API
    version the cluster serves; a kind the cluster does not serve yields nothing."""
    for group, plural, versions in FLUX_PLURALS:
        for version in versions:
            if namespace:
                ns = names.segment(names.namespace(namespace, field="--namespace"))
                path = f"/apis/{group}/{version}/namespaces/{ns}/{plural}"
            else:
                path = f"/apis/{group}/{version}/{plural}"
            try:
                answer = client.request("GET", path, action="list", what=f"{plural}.{group}")
            except ApiNotFound:
                continue  # this version (or Flux) is not installed: try the older one
            for index, item in enumerate((answer or {}).get("items") or ()):
                # A list's items carry no apiVersion/kind: give them theirs back.
                typed = (
                    {"apiVersion": f"{group}/{version}", "kind": _KINDS[plural], **item}
                    if isinstance(item, dict)
                    else item
                )
                yield f"cluster {plural}.{group}/{version}, item {index}", typed
            break


_KINDS = {"gitrepositories": "GitRepository", "kustomizations": "Kustomization"}


def _render(conversion: Conversion, *, output: str) -> str:
    if output == "json":
        doc = {
            "items": conversion.items,
            "notCarriedOver": [note.as_dict() for note in conversion.not_carried],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump_all(
        conversion.items, sort_keys=False, allow_unicode=True, explicit_start=True
    )


@import_group.command("flux")
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML file of Flux objects (repeatable; multi-document files and Lists are read).",
)
@click.option("--from-cluster", is_flag=True, help="Read the Flux objects from the cluster.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KUBECONFIG",
    help="kubeconfig file for --from-cluster (default: $KUBECONFIG, then ~/.kube/config).",
)
@click.option("--context", default=None, help="kubeconfig context for --from-cluster.")
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="With --from-cluster: only this namespace (default: all). With files: the namespace "
    "of objects that name none (default: default).",
)
@output_option(
    "yaml",
    "json",
    help="yaml: the objects, ready for kubectl apply; json: {items, notCarriedOver}.",
)
@output_file_option()
def import_flux(
    *,
    files: tuple[Path, ...],
    from_cluster: bool,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    output: str,
    output_file: Path | None,
) -> None:
    """Convert Flux GitRepository and Kustomization objects into Repository and Sync objects.

    Fields with no counterpart are listed on stderr, one line each; the decryption Secret is
    kept, so SOPS files are used as they are.
    """
    if bool(files) == from_cluster:
        raise click.UsageError("give either -f FILE (one or more) or --from-cluster")
    if namespace is not None:
        names.namespace(namespace, field="--namespace")
    if from_cluster:
        # Imported here: the kubernetes client is heavy, and --help or -f FILE need none of it.
        from sealed_gitops.cluster import connect

        client = connect(kubeconfig, context=context)
        conversion = convert(flux_objects_from_cluster(client, namespace=namespace))
        where = "the cluster"
    else:
        conversion = convert(_from_files(files), default_namespace=namespace or "default")
        where = ", ".join(str(path) for path in files)
    if not conversion.items and not conversion.not_carried:
        raise ConfigError(f"no Flux GitRepository or Kustomization found in {where}")
    for note in conversion.not_carried:
        click.echo(f"warning: {note.line()}", err=True)
    text = _render(conversion, output=output)
    if output_file is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output_file, text.encode("utf-8"))
        click.echo(f"wrote {len(conversion.items)} objects to {output_file}", err=True)
