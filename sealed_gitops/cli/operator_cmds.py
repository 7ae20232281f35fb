"""``sealed-gitops operator``, ``reconcile``, ``suspend``, ``resume`` and ``status``.

Why this module exists: it is the operator's face for people. ``operator`` runs the reconcile
loops in the foreground (as the container's command, or next to a local cluster) and shuts down
cleanly on SIGTERM, releasing its Lease so a standby takes over at once. The other four are what
``flux reconcile``, ``flux suspend``/``resume`` and ``flux get`` are for Flux users: they only read
and patch our custom resources through the project's client, so they work from any laptop with a
kubeconfig. Nothing here ever reads a Secret; messages printed come from conditions, which the
operator redacts before it stores them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVarTuple

import click

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.vault import normalize_address
from sealed_gitops.operator.conditions import READY, summarize
from sealed_gitops.operator.resources import REQUESTED_AT, get_object, list_objects, object_path
from sealed_gitops.operator.settings import OperatorSettings, parse_duration
from sealed_gitops.redact import RedactingFilter, install_logging_filter, redact

__all__ = [
    "HANDLED_AT_FIELD",
    "STATUS_FIELDS",
    "object_rows",
    "operator_command",
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

#: Fields of each row of ``status --output json``, in this order (a stable interface for tools).
STATUS_FIELDS = (
    "kind",
    "namespace",
    "name",
    "ready",
    "reason",
    "revision",
    "lastAttemptedRevision",
    "suspended",
    "message",
)

_KINDS = {"sync": "Sync", "repository": "Repository"}

_kind_option = click.option(
    "--kind",
    type=click.Choice(sorted(_KINDS)),
    default="sync",
    show_default=True,
    help="Which kind of object NAMESPACE/NAME is.",
)
_kubeconfig_option = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KUBECONFIG",
    help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
)


def _split_ref(ref: str) -> tuple[str, str]:
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ConfigError(f"{ref!r} is not NAMESPACE/NAME")
    return namespace, name


def _client(kubeconfig: Path | None) -> KubeClient:
    return connect(kubeconfig)


def _now_rfc3339() -> str:
    # Sub-second precision: two requests within one second must still differ.
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == READY:
            return dict(cond)
    return {}


def _revision(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if obj.get("kind") == "Repository":
        return str((status.get("artifact") or {}).get("revision") or "")
    return str(status.get("lastAppliedRevision") or "")


def _patch(client: KubeClient, kind: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
    return client.request(
        "PATCH",
        object_path(kind, namespace, name),
        body=body,
        content_type="application/merge-patch+json",
        action="patch",
        what=f"{kind} {namespace}/{name}",
    )


# -- reconcile --------------------------------------------------------------------------------


def request_reconcile(client: KubeClient, kind: str, namespace: str, name: str) -> str:
    """Set the requested-at annotation to now; return the value written."""
    requested = _now_rfc3339()
    _patch(client, kind, namespace, name, {"metadata": {"annotations": {REQUESTED_AT: requested}}})
    return requested


def source_revision(client: KubeClient, sync: dict[str, Any]) -> str | None:
    """The revision the Sync's Repository publishes now (None when it has none yet)."""
    namespace = str((sync.get("metadata") or {}).get("namespace") or "")
    repository = str(((sync.get("spec") or {}).get("repositoryRef") or {}).get("name") or "")
    found = get_object(client, "Repository", namespace, repository) if repository else None
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
        obj = get_object(client, kind, namespace, name)
        if obj is None:
            raise ConfigError(f"{kind} {namespace}/{name} was deleted while waiting")
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        ready = _ready(obj)
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


@click.command("reconcile")
@click.argument("ref", metavar="NAMESPACE/NAME")
@_kind_option
@click.option("--wait", is_flag=True, help="Wait until the operator has handled the request.")
@click.option("--timeout", default="60s", show_default=True, help="How long --wait waits.")
@_kubeconfig_option
@click.pass_context
def reconcile(
    ctx: click.Context, *, ref: str, kind: str, wait: bool, timeout: str, kubeconfig: Path | None
) -> None:
    """Ask the operator to reconcile a Sync (or Repository) now."""
    namespace, name = _split_ref(ref)
    kind_name = _KINDS[kind]
    seconds = parse_duration(timeout, default=60.0, what="--timeout")
    client = _client(kubeconfig)
    try:
        before = get_object(client, kind_name, namespace, name)
        if before is None:
            raise ConfigError(f"{kind_name} {namespace}/{name} not found")
        requested = request_reconcile(client, kind_name, namespace, name)
        click.echo(f"► annotated {kind_name} {namespace}/{name} ({REQUESTED_AT}={requested})")
        if not wait:
            return
        click.echo("◎ waiting for the operator to reconcile")
        obj = wait_reconciled(
            client,
            kind_name,
            namespace,
            name,
            requested=requested,
            before=before.get("status") or {},
            timeout=seconds,
            revision=source_revision(client, before) if kind_name == "Sync" else None,
        )
    finally:
        client.close()
    if obj is None:
        click.echo(f"✗ not reconciled within {timeout}", err=True)
        ctx.exit(1)
    ready, message = summarize((obj.get("status") or {}).get("conditions"))
    if ready == "True":
        click.echo(f"✔ {redact(message) or 'Ready'}")
        return
    click.echo(f"✗ {_ready(obj).get('reason', 'NotReady')}: {redact(message)}", err=True)
    ctx.exit(1)


# -- suspend / resume -------------------------------------------------------------------------


def _set_suspend(ref: str, kind: str, kubeconfig: Path | None, *, value: bool) -> None:
    namespace, name = _split_ref(ref)
    kind_name = _KINDS[kind]
    client = _client(kubeconfig)
    try:
        _patch(client, kind_name, namespace, name, {"spec": {"suspend": value}})
    finally:
        client.close()
    click.echo(f"✔ {kind_name} {namespace}/{name} {'suspended' if value else 'resumed'}")


@click.command("suspend")
@click.argument("ref", metavar="NAMESPACE/NAME")
@_kind_option
@_kubeconfig_option
def suspend(*, ref: str, kind: str, kubeconfig: Path | None) -> None:
    """Stop reconciling a Sync (or Repository) until it is resumed."""
    _set_suspend(ref, kind, kubeconfig, value=True)


@click.command("resume")
@click.argument("ref", metavar="NAMESPACE/NAME")
@_kind_option
@_kubeconfig_option
def resume(*, ref: str, kind: str, kubeconfig: Path | None) -> None:
    """Reconcile a suspended Sync (or Repository) again."""
    _set_suspend(ref, kind, kubeconfig, value=False)


# -- status -----------------------------------------------------------------------------------


def object_rows(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row with :data:`STATUS_FIELDS` per object, sorted by kind, namespace and name."""
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        ready = _ready(obj)
        rows.append(
            {
                "kind": str(obj.get("kind") or ""),
                "namespace": str(meta.get("namespace") or ""),
                "name": str(meta.get("name") or ""),
                "ready": str(ready.get("status") or "Unknown"),
                "reason": str(ready.get("reason") or ""),
                "revision": _revision(obj),
                "lastAttemptedRevision": str(
                    (obj.get("status") or {}).get("lastAttemptedRevision") or ""
                ),
                "suspended": bool((obj.get("spec") or {}).get("suspend")),
                "message": redact(str(ready.get("message") or "")),
            }
        )
    return sorted(rows, key=lambda r: (r["kind"], r["namespace"], r["name"]))


def _short(revision: str) -> str:
    """``main@sha1:0123456789ab`` instead of the full 40 hex digits, for a table."""
    head, sep, sha = revision.rpartition(":")
    return f"{head}{sep}{sha[:12]}" if sep and len(sha) > 12 else revision


_TABLE = (
    ("NAMESPACE", "namespace"),
    ("NAME", "name"),
    ("READY", "ready"),
    ("REVISION", "revision"),
    ("SUSPENDED", "suspended"),
    ("MESSAGE", "message"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "revision":
        return _short(str(row[key]))
    if key == "suspended":
        return "True" if row[key] else "False"
    return str(row[key]).replace("\n", " ")


def _print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not sys.stdout.isatty():
        # Piped: tab-separated columns without colour or box drawing, one object per line.
        click.echo("\t".join(h for h, _ in _TABLE))
        for row in rows:
            click.echo("\t".join(_cell(row, k) for _, k in _TABLE))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for header, _ in _TABLE:
        table.add_column(header, overflow="fold", ratio=3 if header == "MESSAGE" else None)
    colour = {"True": "green", "False": "red"}
    for row in rows:
        cells = [escape(_cell(row, k)) for _, k in _TABLE]
        style = colour.get(row["ready"], "yellow")
        cells[2] = f"[{style}]{cells[2]}[/]"
        table.add_row(*cells)
    Console(highlight=False).print(table)


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
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or a JSON array for tools.",
)
@_kubeconfig_option
def status(
    *,
    namespace: str | None,
    all_namespaces: bool,
    kind: str,
    output: str,
    kubeconfig: Path | None,
) -> None:
    """Syncs (and Repositories) with Ready, revision and message, like `flux get`."""
    if namespace and all_namespaces:
        raise ConfigError("give either --namespace or --all-namespaces")
    kinds = ["Sync", "Repository"] if kind == "all" else [_KINDS[kind]]
    client = _client(kubeconfig)
    try:
        found = {k: object_rows(list_objects(client, k, namespace)) for k in kinds}
    finally:
        client.close()
    if output == "json":
        click.echo(json.dumps([row for k in kinds for row in found[k]], indent=2))
        return
    for k in kinds:
        title = f"{k}s" if k == "Sync" else "Repositories"
        if not found[k]:
            where = f" in namespace {namespace}" if namespace else ""
            click.echo(f"no {title}{where}", err=True)
            continue
        _print_table(title, found[k])


# -- operator ---------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (redacted by the filter)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        # kopf's per-object loggers say which object a line is about.
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            line["object"] = {k: ref.get(k) for k in ("kind", "namespace", "name") if ref.get(k)}
        return json.dumps(line, sort_keys=False)


def configure_logging(*, log_format: str, level: int) -> None:
    """Root logging for the operator process: one stderr handler, always redacting.

    Filters on the root *logger* do not see records propagated from child loggers; a filter on
    the root *handler* does, so that is where the redaction must sit. kopf's loggers propagate to
    the root; any handler they carry gets the filter too.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_logging_filter()
    for name in list(logging.Logger.manager.loggerDict):
        if name == "kopf" or name.startswith("kopf."):
            install_logging_filter(logging.getLogger(name))
    # Quiet libraries whose debug chatter (URLs with tokens in query strings, headers) is noise.
    for noisy in ("urllib3", "kubernetes", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Ts = TypeVarTuple("_Ts")


class _StopOnSignalLoop(asyncio.SelectorEventLoop):
    """An event loop on which SIGTERM and SIGINT always mean "set the operator's stop flag".

    kopf installs its own handlers for both signals when it runs in the main thread; on that
    path its stop-flag waiter stays pending and shutdown sits out kopf's 5-second grace for
    hung tasks. Routing every handler for these signals to our flag makes a signal take the
    same quick path as a programmatic stop (the Lease is released either way).
    """

    stop_flag: asyncio.Event | None = None

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        if self.stop_flag is not None and sig in _STOP_SIGNALS:
            super().add_signal_handler(sig, _stop_on, self.stop_flag, signal.Signals(sig).name)
            return
        super().add_signal_handler(sig, callback, *args)


def _stop_on(stop: asyncio.Event, name: str) -> None:
    if not stop.is_set():
        logging.getLogger("sealed_gitops.cli.operator").info("%s received, stopping", name)
    stop.set()


async def _run(settings: OperatorSettings) -> None:
    from sealed_gitops.operator.runner import run_operator

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if isinstance(loop, _StopOnSignalLoop):
        loop.stop_flag = stop
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    # The context connects as the settings say: the pod's service account when in a pod.
    await run_operator(settings, stop=stop)


def _settings(
    *,
    kubeconfig: Path | None,
    namespaces: Sequence[str],
    metrics_port: int | None,
    webhook_port: int | None,
    bind_address: str,
    allow_target_namespaces: Sequence[str],
    leader_election: bool,
    lease_namespace: str,
    cache_dir: Path | None,
    allow_file_urls: bool,
) -> OperatorSettings:
    settings = OperatorSettings(
        namespaces=list(namespaces),
        target_namespace_allowlist=list(allow_target_namespaces),
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        cache_dir=cache_dir,
        metrics_port=metrics_port,
        webhook_port=webhook_port,
        bind_address=bind_address,
        leader_namespace=lease_namespace,
        identity=os.environ.get("POD_NAME", ""),
    )
    if not leader_election:
        settings.leader_lease = None
    if allow_file_urls:
        settings.allowed_schemes = settings.allowed_schemes | {"file"}
    return settings


def _port(value: str | None) -> int | None:
    """``off`` (or ``none``) disables a server; 0 asks the OS for a free port."""
    if value is None or value.lower() in ("off", "none", ""):
        return None
    try:
        port = int(value)
    except ValueError as exc:
        raise ConfigError(f"{value!r} is not a port number (or 'off')") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range")
    return port


@click.command("operator")
@_kubeconfig_option
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="Watch this namespace (repeatable). Default: all namespaces.",
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default).")
@click.option(
    "--metrics-port",
    default="8080",
    show_default=True,
    help="Prometheus /metrics and /healthz port; 0 picks one; 'off' disables.",
)
@click.option(
    "--webhook-port",
    default="9292",
    show_default=True,
    help="Webhook receiver port; 0 picks one; 'off' disables.",
)
@click.option(
    "--bind-address",
    default="127.0.0.1",
    show_default=True,
    help="Address of both HTTP servers (0.0.0.0 in a pod).",
)
@click.option(
    "--allow-target-namespace",
    "allow_target_namespaces",
    multiple=True,
    metavar="NS",
    help="A namespace Syncs without serviceAccountName may write into ('*': any).",
)
@click.option(
    "--leader-election/--no-leader-election",
    default=True,
    show_default=True,
    help="Take a Lease before reconciling, so only one replica acts at a time.",
)
@click.option(
    "--lease-namespace",
    default="sealed-gitops-system",
    show_default=True,
    help="Namespace of the leader-election Lease.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where Git checkouts are cached (default: a temporary directory).",
)
@click.option(
    "--allow-file-urls",
    is_flag=True,
    help="Let Repositories use file:// URLs (local demos and tests only).",
)
@click.option(
    "--vault-address",
    "vault_addresses",
    multiple=True,
    metavar="URL",
    help="A Vault the operator may log in to with its service-account JWT (repeatable); "
    "when given, Vault tokens from tenants' Secrets may only go to these addresses too.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="Log lines as JSON objects or plain text (stderr).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning"]),
    default="info",
    show_default=True,
)
def operator_command(
    *,
    kubeconfig: Path | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    metrics_port: str,
    webhook_port: str,
    bind_address: str,
    allow_target_namespaces: tuple[str, ...],
    leader_election: bool,
    lease_namespace: str,
    cache_dir: Path | None,
    allow_file_urls: bool,
    vault_addresses: tuple[str, ...],
    log_format: str,
    log_level: str,
) -> None:
    """Run the operator in the foreground until SIGTERM or Ctrl-C.

    Without --kubeconfig (and $KUBECONFIG) inside a pod, the pod's service account is used.
    """
    if namespaces and all_namespaces:
        raise ConfigError("give either --namespace or --all-namespaces")
    configure_logging(log_format=log_format, level=getattr(logging, log_level.upper()))
    settings = _settings(
        kubeconfig=kubeconfig,
        namespaces=namespaces,
        metrics_port=_port(metrics_port),
        webhook_port=_port(webhook_port),
        bind_address=bind_address,
        allow_target_namespaces=allow_target_namespaces,
        leader_election=leader_election,
        lease_namespace=lease_namespace,
        cache_dir=cache_dir,
        allow_file_urls=allow_file_urls,
    )
    settings.vault_addresses = [normalize_address(a) for a in vault_addresses]
    in_cluster = kubeconfig is None and _in_cluster()
    log = logging.getLogger("sealed_gitops.cli.operator")
    log.info(
        "starting operator: %s, %s",
        "namespaces " + ", ".join(namespaces) if namespaces else "all namespaces",
        "in-cluster configuration" if in_cluster else f"kubeconfig {kubeconfig or 'default'}",
    )
    with asyncio.Runner(loop_factory=_StopOnSignalLoop) as runner:
        runner.run(_run(settings))
    log.info("operator stopped")
