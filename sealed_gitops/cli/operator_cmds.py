"""``sealed-gitops operator``: run the operator in the foreground.

Why this module exists: it is how the operator runs, as the container's command or next to a
local cluster. It sets up logging that always redacts, maps its flags onto
:class:`~sealed_gitops.operator.settings.OperatorSettings`, and shuts down cleanly on SIGTERM,
releasing its Lease so a standby takes over at once. The commands that only read and patch the
operator's objects (``reconcile``, ``suspend``, ``resume``, ``status``) are in ``status_cmds.py``;
the process-wide set-up (logging, signals) is :mod:`.operator_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from sealed_gitops.cli.conventions import DURATION, kube_options
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.settings import OperatorSettings

from .operator_process import (
    EARLY_STOP,
    STOP_SIGNALS,
    StopOnSignalLoop,
    configure_logging,
    early_signal,
    stop_on,
)

__all__ = ["operator_command"]


# -- operator ---------------------------------------------------------------------------------


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


async def _run(settings: OperatorSettings) -> None:
    from sealed_gitops.operator.gc_tuning import tune_collector
    from sealed_gitops.operator.runner import run_operator

    tune_collector()  # a long-lived process with a large heap (operator/gc_tuning.py)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if isinstance(loop, StopOnSignalLoop):
        loop.stop_flag = stop
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if EARLY_STOP.is_set():  # a signal that came while the web view was starting
        stop_on(stop, "signal before start")
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
@kube_options(namespace_help=None)  # its -n is repeatable: the namespaces it watches
@click.option(
    "-n",
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
    "--ui-port",
    default="off",
    show_default=True,
    help="Read-only web view (sealed-gitops ui) on 127.0.0.1, for kubectl port-forward; 0 "
    "picks one. It reads with the operator's rights: whoever may port-forward to the pod sees "
    "every Sync and KeyRing it sees (never a value).",
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
    "--default-service-account",
    metavar="NAME",
    help="Apply a Sync without serviceAccountName as this ServiceAccount of its namespace "
    "(the API server then checks its RBAC). Unset: the operator writes with its own rights.",
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
    "--lease-duration",
    type=DURATION,
    default="15s",
    show_default=True,
    help="How long a leader's Lease lasts without renewal: a standby takes over about this "
    "long after the leader dies.",
)
@click.option(
    "--shard",
    metavar="NAME",
    default=None,
    help="Reconcile only the Repositories, Syncs and KeyRings labelled "
    "sealed-gitops.io/shard=NAME, electing a leader on the Lease sealed-gitops-operator-NAME. "
    "Without it: only the objects without that label. See docs/sharding.md.",
)
@click.option(
    "--selector",
    "shard_selector",
    metavar="SELECTOR",
    default=None,
    help="Reconcile the objects matching this label selector instead of the --shard label "
    "rule (e.g. 'sharding.fluxcd.io/key in (shard1)'); give every sharded operator a --shard "
    "name too, which names its Lease.",
)
@click.option(
    "--concurrent",
    "concurrent_syncs",
    type=click.IntRange(min=1, max=64),
    default=OperatorSettings.concurrent_syncs,
    show_default=True,
    help="Sync reconciles that run at once (Flux's --concurrent); the others wait their turn. "
    "More is faster on a slow or remote API server and holds more memory at the peak.",
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
    help="A Vault the operator may log in to with its service-account JWT (repeatable). "
    "Tenants' sops.vault-token tokens go only to these addresses (none without the flag); "
    "list http:// explicitly to allow plain HTTP.",
)
@click.option(
    "--remote-cluster-address",
    "remote_cluster_addresses",
    multiple=True,
    metavar="URL",
    help="An API server (https://host[:port]) a Sync's spec.kubeConfig may target (repeatable; "
    "'*' for any). None by default: remote clusters are refused.",
)
@click.option(
    "--no-cross-namespace-refs/--cross-namespace-refs",
    "no_cross_namespace_refs",
    default=True,
    show_default=True,
    help="Refuse references into another namespace (a Sync's keyRingRef.namespace), except to "
    "KeyRings of the --shared-keyring-namespace namespaces that list the Sync's namespace.",
)
@click.option(
    "--shared-keyring-namespace",
    "shared_keyring_namespaces",
    multiple=True,
    metavar="NAMESPACE",
    help="An admin namespace whose KeyRings serve the namespaces in their allowedNamespaces "
    "(repeatable; default: sealed-gitops-system).",
)
@click.option(
    "--vault-kv-path-prefix",
    "vault_kv_path_prefixes",
    multiple=True,
    metavar="PATH",
    help="A Vault KV path prefix KeyRings may name in spec.vault.kvPath besides their own "
    "secret/data/sealed-gitops/NAMESPACE/NAME (repeatable; {namespace} and {name} stand for "
    "the KeyRing's).",
)
@click.option(
    "--global-decryption-secret",
    metavar="NAMESPACE/NAME",
    default=None,
    help="A decryption Secret (Flux's --sops-age-secret) used by every Sync that names neither "
    "decryption.secretRef nor keyRingRef; a Sync's own keys take precedence. Every tenant can "
    "then have files encrypted for these keys applied: for one-tenant clusters.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="Log lines as JSON objects or plain text (stderr); audit lines are JSON on stdout.",
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
    context: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    metrics_port: str,
    webhook_port: str,
    ui_port: str,
    bind_address: str,
    allow_target_namespaces: tuple[str, ...],
    default_service_account: str | None,
    leader_election: bool,
    lease_namespace: str,
    lease_duration: float,
    shard: str | None,
    shard_selector: str | None,
    concurrent_syncs: int,
    cache_dir: Path | None,
    allow_file_urls: bool,
    vault_addresses: tuple[str, ...],
    remote_cluster_addresses: tuple[str, ...],
    no_cross_namespace_refs: bool,
    shared_keyring_namespaces: tuple[str, ...],
    vault_kv_path_prefixes: tuple[str, ...],
    global_decryption_secret: str | None,
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
    from sealed_gitops.keys.vault_addresses import normalize_address
    from sealed_gitops.operator.sharding import Shard
    from sealed_gitops.plan import names

    settings.context = context
    # Checked here, before the name reaches a Lease, a finalizer or a selector.
    settings.concurrent_syncs = concurrent_syncs
    settings.shard = Shard.of(shard, selector=shard_selector)
    if settings.leader_lease:
        settings.leader_lease = settings.shard.lease_name()
    settings.leader_namespace = names.namespace(lease_namespace, field="--lease-namespace")
    if lease_duration < 1:
        raise ConfigError("--lease-duration must be at least 1s")
    settings.lease_duration = lease_duration
    settings.vault_addresses = [normalize_address(a) for a in vault_addresses]
    from sealed_gitops.cluster.kubeconfig import server_origin

    settings.remote_cluster_addresses = [
        a if a == "*" else server_origin(a) for a in remote_cluster_addresses
    ]
    settings.cross_namespace_refs = not no_cross_namespace_refs
    if shared_keyring_namespaces:
        settings.shared_keyring_namespaces = [
            names.namespace(n, field="--shared-keyring-namespace")
            for n in shared_keyring_namespaces
        ]
    settings.vault_kv_path_prefixes = list(vault_kv_path_prefixes)
    settings.default_service_account = default_service_account or None
    if global_decryption_secret:
        owner, sep, name = global_decryption_secret.partition("/")
        if not sep:
            raise ConfigError("--global-decryption-secret: expected NAMESPACE/NAME")
        settings.global_decryption_secret = (
            f"{names.namespace(owner, field='--global-decryption-secret')}/"
            f"{names.object_name(name, field='--global-decryption-secret')}"
        )
    in_cluster = kubeconfig is None and _in_cluster()
    log = logging.getLogger("sealed_gitops.cli.operator")
    log.info(
        "starting operator: %s, %s, %s",
        "namespaces " + ", ".join(namespaces) if namespaces else "all namespaces",
        "in-cluster configuration" if in_cluster else f"kubeconfig {kubeconfig or 'default'}",
        settings.shard,
    )
    if not settings.default_service_account:
        # Allowed (one-tenant clusters, local runs), but say so: such writes need the operator
        # to hold write rights itself, which deploy/ does not grant (docs/permissions.md).
        log.warning(
            "no --default-service-account: Syncs without serviceAccountName are applied with "
            "the operator's own rights"
        )
    with contextlib.ExitStack() as stack:
        EARLY_STOP.clear()
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                # the old handler comes back afterwards (the command may run inside a test)
                stack.callback(signal.signal, sig, signal.signal(sig, early_signal))
        port = _port(ui_port)
        if port is not None:
            stack.enter_context(_web_view(kubeconfig, context, in_cluster=in_cluster, port=port))
        with asyncio.Runner(loop_factory=StopOnSignalLoop) as runner:
            runner.run(_run(settings))
    log.info("operator stopped")


@contextlib.contextmanager
def _web_view(
    kubeconfig: Path | None, context: str | None, *, in_cluster: bool, port: int
) -> Iterator[None]:
    """``--ui-port``: the web view in a thread, with a client of its own (same identity)."""
    from sealed_gitops.cluster import connect
    from sealed_gitops.ui import UiSettings, UiThread

    client = connect(kubeconfig, context=context, in_cluster=in_cluster)
    try:
        with UiThread(client, UiSettings(bind="127.0.0.1", port=port)) as view:
            logging.getLogger("sealed_gitops.cli.operator").info("web view on %s", view.url)
            yield
    finally:
        client.close()
