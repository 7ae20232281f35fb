"""``sealed-gitops reconcile``, ``suspend``, ``resume`` and ``status``, for people.

Why apart from ``operator_cmds.py``: these are what ``flux reconcile``, ``flux suspend``/``resume``
and ``flux get`` are for Flux users. They only read and patch our custom resources through the
project's client, so they work from any laptop with a kubeconfig and need no operator code.
Nothing here ever reads a Secret; messages printed come from conditions, which the operator
redacts before it stores them (and which are redacted again here). How ``status`` turns objects
into rows and a table is :mod:`.status_table`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealed_gitops.cli.conventions import (
    DURATION,
    LazyModule,
    format_duration,
    kube_options,
    output_option,
    rows_json,
    split_ref,
)
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.conditions import summarize
from sealed_gitops.redact import redact

from .status_table import (
    STATUS_FIELDS,
    applied_revision,
    object_rows,
    print_table,
    ready_condition,
)

if TYPE_CHECKING:
    from sealed_gitops import cluster
    from sealed_gitops.cluster import KubeClient
    from sealed_gitops.operator import resources
else:
    # Imported when a command runs: both import the kubernetes client, which --help does not need.
    cluster = LazyModule("sealed_gitops.cluster")
    resources = LazyModule("sealed_gitops.operator.resources")

__all__ = [
    "HANDLED_AT_FIELD",
    "STATUS_FIELDS",
    "object_rows",
    "reconcile",
    "request_reconcile",
    "resume",
    "source_revision",
    "status",
    "suspend",
    "wait_reconciled",
]

#: Status field in which an operator that supports it echoes the requested-at value it handled
#: (Flux writes the same as ``status.lastHandledReconcileAt``); makes ``--wait`` exact.
HANDLED_AT_FIELD = "lastHandledReconcileAt"

#: Without HANDLED_AT_FIELD a reconcile that changed nothing writes nothing: after this many
#: seconds of an unchanged, current status, ``--wait`` takes the request as handled.
SETTLE_SECONDS = 3.0

_KINDS = {"sync": "Sync", "repository": "Repository"}

_kind_option = click.option(
    "--kind",
    type=click.Choice(sorted(_KINDS)),
    default="sync",
    show_default=True,
    help="Which kind of object NAMESPACE/NAME is.",
)
_ref_kube_options = kube_options(
    namespace_help="Namespace of NAME (then the argument is just NAME)."
)


def request_reconcile(client: KubeClient, kind: str, namespace: str, name: str) -> str:
    """Annotate the object so the operator reconciles it now; the requested-at value."""
    return resources.request_reconcile(client, kind, namespace, name)


def _patch(client: KubeClient, kind: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
    return client.request(
        "PATCH",
        resources.object_path(kind, namespace, name),
        body=body,
        content_type="application/merge-patch+json",
        action="patch",
        what=f"{kind} {namespace}/{name}",
    )


# -- reconcile --------------------------------------------------------------------------------


def source_revision(client: KubeClient, sync: dict[str, Any]) -> str | None:
    """The revision the Sync's Repository publishes now (None when it has none yet)."""
    namespace = str((sync.get("metadata") or {}).get("namespace") or "")
    repository = str(((sync.get("spec") or {}).get("repositoryRef") or {}).get("name") or "")
    found = (
        resources.get_object(client, "Repository", namespace, repository) if repository else None
    )
    revision = ((found or {}).get("status") or {}).get("artifact", {}).get("revision")
    return str(revision) if revision else None


def wait_reconciled(
    client: KubeClient,
    kind: str,
    namespace: str,
    name: str,
    *,
    requested: str,
    before: dict[str, Any] | None,
    timeout: float,
    revision: str | None = None,
    poll: float = 0.2,
    settle: float = SETTLE_SECONDS,
) -> dict[str, Any] | None:
    """The object once the operator handled ``requested``, or None after ``timeout`` seconds.

    Exact when the operator echoes the request in ``status.lastHandledReconcileAt``. Otherwise
    handled means: Ready is current (its observedGeneration is the object's generation), the
    last attempted revision is ``revision`` (the source's revision at request time, so a
    reconcile that was already running with an older one does not count), and the status changed
    since ``before`` or stayed the same for ``settle`` seconds (a reconcile with nothing to do
    writes nothing).
    """
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        obj = resources.get_object(client, kind, namespace, name)
        if obj is None:
            raise ConfigError(f"{kind} {namespace}/{name} was deleted while waiting")
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        ready = ready_condition(obj)
        current = bool(ready) and ready.get("observedGeneration") == generation
        if HANDLED_AT_FIELD in status:
            if status[HANDLED_AT_FIELD] == requested and current:
                return obj
        elif (
            current
            and (revision is None or status.get("lastAttemptedRevision") == revision)
            and (status != before or time.monotonic() - started >= settle)
        ):
            return obj
        time.sleep(poll)
    return None


def _request_and_wait(
    client: KubeClient,
    kind: str,
    namespace: str,
    name: str,
    *,
    wait: bool,
    timeout: float,
) -> dict[str, Any] | None:
    """Annotate one object and (with ``wait``) wait for the operator; the object afterwards
    (the one read before the request when not waiting), None when the wait timed out."""
    before = resources.get_object(client, kind, namespace, name)
    if before is None:
        raise ConfigError(f"{kind} {namespace}/{name} not found")
    if (before.get("spec") or {}).get("suspend"):
        # Waiting would only wait out the timeout: the operator leaves it alone.
        raise ConfigError(
            f"{kind} {namespace}/{name} is suspended: resume it first "
            f"(sealed-gitops resume {namespace}/{name} --kind {kind.lower()})"
        )
    requested = request_reconcile(client, kind, namespace, name)
    click.echo(f"► annotated {kind} {namespace}/{name} ({resources.REQUESTED_AT}={requested})")
    if not wait:
        return before
    click.echo(f"◎ waiting for the operator to reconcile {kind} {namespace}/{name}")
    return wait_reconciled(
        client,
        kind,
        namespace,
        name,
        requested=requested,
        before=before.get("status") or {},
        timeout=timeout,
        revision=source_revision(client, before) if kind == "Sync" else None,
    )


def _sync_repository(client: KubeClient, namespace: str, name: str) -> str:
    sync = resources.get_object(client, "Sync", namespace, name)
    if sync is None:
        raise ConfigError(f"Sync {namespace}/{name} not found")
    repository = ((sync.get("spec") or {}).get("repositoryRef") or {}).get("name")
    if not repository:
        raise ConfigError(f"Sync {namespace}/{name} names no repositoryRef")
    return str(repository)


@click.command("reconcile")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@_kind_option
@click.option("--wait", is_flag=True, help="Wait until the operator has handled the request.")
@click.option(
    "--with-source",
    is_flag=True,
    help="Fetch the Sync's Repository first (and wait for it), so the Sync applies the newest "
    "commit, as flux reconcile --with-source does.",
)
@click.option(
    "--timeout", type=DURATION, default="60s", show_default=True, help="How long --wait waits."
)
@_ref_kube_options
@click.pass_context
def reconcile(
    ctx: click.Context,
    *,
    ref: str,
    kind: str,
    wait: bool,
    with_source: bool,
    timeout: float,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Ask the operator to reconcile a Sync (or Repository) now.

    Without --with-source a Sync applies the revision its Repository published last: after a
    push, that may still be the previous commit (the answer of --wait says which it applied).
    """
    namespace, name = split_ref(ref, namespace)
    kind_name = _KINDS[kind]
    seconds, timeout_text = timeout, format_duration(timeout)
    if with_source and kind_name != "Sync":
        raise ConfigError("--with-source is for a Sync (a Repository is the source)")
    client = cluster.connect(kubeconfig, context=context)
    try:
        if with_source:
            repository = _sync_repository(client, namespace, name)
            fetched = _request_and_wait(
                client, "Repository", namespace, repository, wait=True, timeout=seconds
            )
            if fetched is None:
                what = f"Repository {namespace}/{repository}"
                click.echo(f"✗ {what} not fetched within {timeout_text}", err=True)
                ctx.exit(1)
            click.echo(
                f"✔ Repository {namespace}/{repository} at {applied_revision(fetched) or '-'}"
            )
        current = resources.get_object(client, kind_name, namespace, name) or {}
        asked = source_revision(client, current)
        obj = _request_and_wait(client, kind_name, namespace, name, wait=wait, timeout=seconds)
    finally:
        client.close()
    if not wait:
        return
    if obj is None:
        click.echo(f"✗ not reconciled within {timeout_text}", err=True)
        ctx.exit(1)
    ready, message = summarize((obj.get("status") or {}).get("conditions"))
    if ready != "True":
        click.echo(
            f"✗ {ready_condition(obj).get('reason', 'NotReady')}: {redact(message)}", err=True
        )
        ctx.exit(1)
    click.echo(f"✔ {redact(message) or 'Ready'}")
    if kind_name == "Sync":
        applied = applied_revision(obj)
        click.echo(f"✔ applied revision {applied or '-'}")
        if asked and applied != asked:
            click.echo(f"! the Repository publishes {asked}; the Sync is still on {applied}")
        elif not with_source:
            click.echo("  (the Repository's last published revision; --with-source fetches first)")


# -- suspend / resume -------------------------------------------------------------------------


def _set_suspend(
    ref: str,
    kind: str,
    kubeconfig: Path | None,
    *,
    context: str | None,
    namespace: str | None,
    value: bool,
) -> None:
    namespace, name = split_ref(ref, namespace)
    kind_name = _KINDS[kind]
    client = cluster.connect(kubeconfig, context=context)
    try:
        _patch(client, kind_name, namespace, name, {"spec": {"suspend": value}})
    finally:
        client.close()
    click.echo(f"✔ {kind_name} {namespace}/{name} {'suspended' if value else 'resumed'}")


@click.command("suspend")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@_kind_option
@_ref_kube_options
def suspend(
    *, ref: str, kind: str, kubeconfig: Path | None, context: str | None, namespace: str | None
) -> None:
    """Stop reconciling a Sync (or Repository) until it is resumed."""
    _set_suspend(ref, kind, kubeconfig, context=context, namespace=namespace, value=True)


@click.command("resume")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@_kind_option
@_ref_kube_options
def resume(
    *, ref: str, kind: str, kubeconfig: Path | None, context: str | None, namespace: str | None
) -> None:
    """Reconcile a suspended Sync (or Repository) again."""
    _set_suspend(ref, kind, kubeconfig, context=context, namespace=namespace, value=False)


# -- status -----------------------------------------------------------------------------------


@click.command("status")
@click.option("-n", "--namespace", help="Only this namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace (the default).")
@click.option(
    "--kind",
    type=click.Choice(["sync", "repository", "all"]),
    default="sync",
    show_default=True,
    help="Syncs, Repositories, or both (two tables; in JSON one array, Syncs first).",
)
@output_option("table", "json", help="A table for people, or a JSON array for tools.")
@kube_options(namespace_help=None)
def status(
    *,
    namespace: str | None,
    all_namespaces: bool,
    kind: str,
    output: str,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Syncs (and Repositories) with Ready, revision and message, like `flux get`."""
    if namespace and all_namespaces:
        raise ConfigError("give either --namespace or --all-namespaces")
    kinds = ["Sync", "Repository"] if kind == "all" else [_KINDS[kind]]
    client = cluster.connect(kubeconfig, context=context)
    try:
        found = {k: object_rows(resources.list_objects(client, k, namespace)) for k in kinds}
    finally:
        client.close()
    if output == "json":
        click.echo(rows_json([row for k in kinds for row in found[k]], STATUS_FIELDS))
        return
    for k in kinds:
        title = f"{k}s" if k == "Sync" else "Repositories"
        if not found[k]:
            where = f" in namespace {namespace}" if namespace else ""
            click.echo(f"no {title}{where}", err=True)
            continue
        print_table(title, found[k])
