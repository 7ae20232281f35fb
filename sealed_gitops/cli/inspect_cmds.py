"""``sealed-gitops tree``, ``events`` and ``trace``: what Flux users reach for on day two.

Why a module: these three only read what the operator already wrote (a Sync's inventory, its
Events, the ownership labels and annotations on the objects it applied, see
``cluster/ownership.py``) and print it, like ``flux tree``, ``flux events`` and ``flux trace``.
They never read a Secret's ``data``: ``trace`` on a Secret reads its metadata only (the values
are dropped as soon as the object arrives, before anything is printed), and every message
printed passes through the redaction layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealed_gitops.cli.conventions import (
    LazyModule,
    dump_json,
    kube_options,
    output_option,
    rows_json,
    split_ref,
)
from sealed_gitops.errors import ConfigError
from sealed_gitops.redact import Identity, compose, redact

if TYPE_CHECKING:
    from sealed_gitops import cluster
    from sealed_gitops.cluster import KubeClient
else:
    # Imported when a command runs: it imports the kubernetes client, which --help does not need.
    cluster = LazyModule("sealed_gitops.cluster")

__all__ = ["EVENTS_FIELDS", "TRACE_FIELDS", "TREE_FIELDS", "events", "trace", "tree"]

#: Fields of each row of ``tree --output json`` (a stable interface for tools).
TREE_FIELDS = ("kind", "group", "version", "namespace", "name")
#: Fields of each row of ``events --output json``, oldest first.
EVENTS_FIELDS = ("time", "type", "reason", "object", "count", "message")
#: Fields of ``trace --output json``: the object, the Sync that applied it, the Repository and
#: its URL, the source path in the repository, the revision and its author (when recorded).
TRACE_FIELDS = ("object", "sync", "repository", "url", "path", "revision", "author")

_KINDS = {"sync": "Sync", "repository": "Repository"}


def _get(client: KubeClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    from sealed_gitops.operator.resources import get_object

    found = get_object(client, kind, namespace, name)
    if found is None:
        raise ConfigError(f"{kind} {namespace}/{name} not found")
    return found


@click.command("tree")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@kube_options(namespace_help="Namespace of the Sync (then the argument is just NAME).")
@output_option("text", "json")
def tree(
    *,
    ref: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """The objects a Sync applied (its inventory), like `flux tree kustomization`."""
    from sealed_gitops.plan import Inventory

    ns, name = split_ref(ref, namespace, what="Sync")
    client = cluster.connect(kubeconfig, context=context)
    try:
        sync = _get(client, "Sync", ns, name)
    finally:
        client.close()
    inventory = Inventory.from_status((sync.get("status") or {}).get("inventory"))
    rows = [
        {
            "kind": e.id.kind,
            "group": e.id.group,
            "version": e.version,
            "namespace": e.id.namespace,
            "name": e.id.name,
        }
        for e in sorted(inventory.entries, key=lambda e: (e.id.kind, e.id.namespace, e.id.name))
    ]
    if output == "json":
        click.echo(rows_json(rows, TREE_FIELDS))
        return
    click.echo(f"Sync/{ns}/{name}")
    for index, row in enumerate(rows):
        branch = "└──" if index == len(rows) - 1 else "├──"
        where = f"{row['namespace']}/" if row["namespace"] else ""
        click.echo(f"{branch} {row['kind']}/{where}{row['name']}")


@click.command("events")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@click.option(
    "--kind",
    type=click.Choice(sorted(_KINDS)),
    default="sync",
    show_default=True,
    help="Which kind of object NAMESPACE/NAME is.",
)
@kube_options(namespace_help="Namespace of the object (then the argument is just NAME).")
@output_option("table", "json")
def events(
    *,
    ref: str,
    kind: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """The Events of a Sync (or Repository), oldest first, like `flux events --for`."""
    from sealed_gitops.plan import names

    ns, name = split_ref(ref, namespace, what=_KINDS[kind])
    kind_name = _KINDS[kind]
    # Both go into the request (path and field selector): only what Kubernetes admits as names,
    # so "-n ../../x" or "a,involvedObject.kind=Secret" cannot reach another path or selector.
    ns = names.namespace(ns, field="namespace")
    name = names.object_name(name, field=f"{kind_name} name")
    client = cluster.connect(kubeconfig, context=context)
    try:
        found = client.request(
            "GET",
            f"/api/v1/namespaces/{names.segment(ns)}/events",
            query={"fieldSelector": f"involvedObject.kind={kind_name},involvedObject.name={name}"},
            action="list",
            what=f"Events of {kind_name} {ns}/{name}",
        )
    finally:
        client.close()
    rows = sorted(
        (
            {
                "time": cluster.event_time(event),
                "type": str(event.get("type") or ""),
                "reason": str(event.get("reason") or ""),
                "object": f"{kind_name}/{name}",
                "count": int(event.get("count") or 1),
                "message": redact(str(event.get("message") or "")),
            }
            for event in found.get("items") or []
        ),
        key=lambda row: str(row["time"]),
    )
    if output == "json":
        click.echo(rows_json(rows, EVENTS_FIELDS))
        return
    if not rows:
        click.echo(f"no Events for {kind_name} {ns}/{name}", err=True)
        return
    click.echo("\t".join(("TIME", "TYPE", "REASON", "MESSAGE")))
    for row in rows:
        # printable only: an Event's text is anyone's who may create Events; no terminal escapes
        message = _printable(str(row["message"]))
        cells = (str(row["time"]), str(row["type"]), str(row["reason"]))
        click.echo("\t".join((*(compose(Identity(c)) for c in cells), message)))


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _parse_object(text: str) -> tuple[str, str, str]:
    """``[APIVERSION/]KIND/NAME`` -> (apiVersion, kind, name); the API version defaults to v1."""
    parts = text.split("/")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"{text!r} is not KIND/NAME (or APIVERSION/KIND/NAME, e.g. apps/v1/Deployment/web)"
        )
    api_version = "/".join(parts[:-2]) or "v1"
    return api_version, parts[-2], parts[-1]


@click.command("trace")
@click.argument("obj", metavar="[APIVERSION/]KIND/NAME")
@kube_options(namespace_help="Namespace of the object (default: default).")
@output_option("text", "json")
def trace(
    *,
    obj: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """A live object back to the Sync that applied it, its source path and revision.

    Like `flux trace`: e.g. `sealed-gitops trace Secret/db -n team-a`, or
    `sealed-gitops trace apps/v1/Deployment/web -n team-a`.
    """
    from sealed_gitops.cluster import (
        AUTHOR_ANNOTATION,
        COMMIT_ANNOTATION,
        SOURCE_PATH_ANNOTATION,
        SYNC_NAME_LABEL,
        SYNC_NAMESPACE_LABEL,
        Discovery,
        read_live,
    )
    from sealed_gitops.operator.resources import get_object
    from sealed_gitops.plan import ObjectId

    api_version, kind, name = _parse_object(obj)
    ns = namespace or "default"
    group = api_version.rpartition("/")[0]
    client = cluster.connect(kubeconfig, context=context)
    try:
        discovery = Discovery(client)
        resource = discovery.find(api_version, kind)
        if resource is None:
            raise ConfigError(f"the cluster serves no {kind} in {api_version}")
        oid = ObjectId(ns if resource.namespaced else "", name, group, kind)
        live = read_live(client, discovery, {oid: api_version}).get(oid)
        if live is None:
            raise ConfigError(f"{kind} {ns}/{name} not found")
        # Metadata only from here on: a Secret's values are never kept, let alone printed.
        meta = dict(live.get("metadata") or {})
        del live
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        sync_ns, sync_name = labels.get(SYNC_NAMESPACE_LABEL), labels.get(SYNC_NAME_LABEL)
        if not sync_ns or not sync_name:
            raise ConfigError(f"{kind} {ns}/{name} was not applied by a Sync (no ownership labels)")
        sync = get_object(client, "Sync", str(sync_ns), str(sync_name)) or {}
        spec, status = sync.get("spec") or {}, sync.get("status") or {}
        repository_name = str((spec.get("repositoryRef") or {}).get("name") or "")
        repository = (
            get_object(client, "Repository", str(sync_ns), repository_name)
            if repository_name
            else None
        ) or {}
    finally:
        client.close()
    where = f"{oid.namespace}/" if oid.namespace else ""
    row = {
        "object": f"{kind}/{where}{name}",
        "sync": f"{sync_ns}/{sync_name}",
        "repository": f"{sync_ns}/{repository_name}" if repository_name else "",
        "url": redact(str((repository.get("spec") or {}).get("url") or "")),
        "path": str(annotations.get(SOURCE_PATH_ANNOTATION) or spec.get("path") or ""),
        "revision": str(
            annotations.get(COMMIT_ANNOTATION) or status.get("lastAppliedRevision") or ""
        ),
        "author": str(annotations.get(AUTHOR_ANNOTATION) or ""),
    }
    if output == "json":
        click.echo(dump_json({field: row[field] for field in TRACE_FIELDS}))
        return
    labels_text = {
        "object": "Object",
        "sync": "Sync",
        "repository": "Repository",
        "url": "URL",
        "path": "Path",
        "revision": "Revision",
        "author": "Author",
    }
    for field in TRACE_FIELDS:
        # the annotations are a tenant's to write: shown printable and bounded, as identities
        shown = compose(Identity(str(row[field]))) if row[field] else "-"
        click.echo(f"{labels_text[field] + ':':<12}{shown}")
    if not sync:
        click.echo(f"! Sync {sync_ns}/{sync_name} no longer exists", err=True)
