"""Which cluster a Sync writes to: its own, or the remote one ``spec.kubeConfig`` names.

Why a module: with ``kubeConfig.secretRef`` every cluster phase of a reconcile (apply, drift,
ownership, prune, health, deletion) talks to another API server, while status, Events and the
Sync's own reads stay on the operator's cluster. This module is the one place that decides which
client and which API discovery those phases get, so none of them can mix the two.

The kubeconfig is read from the Secret in the Sync's namespace with the rights the Sync uses
(:meth:`OperatorContext.client_as`), checked as hostile input
(:mod:`sealed_gitops.cluster.kubeconfig`: inline credentials only, no plugins, no files, and a
server the cluster admin listed with ``--remote-cluster-address``), and the client is kept
while the Secret's resourceVersion holds. On the remote cluster the Sync acts as the
kubeconfig's identity, impersonating its ``serviceAccountName`` there when it names one (as Flux
does); the operator's ``--default-service-account`` is an account of the operator's cluster, so it
is not used remotely.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealed_gitops.cluster import Discovery, Identity, KubeClient
from sealed_gitops.cluster.kubeconfig import check_allowed, parse_kubeconfig, remote_client
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.resources import read_secret_data
from sealed_gitops.operator.specs import SyncSpec

__all__ = ["DEFAULT_KEYS", "Target", "target_cluster"]

#: Where a kubeconfig is looked for in the Secret when ``secretRef.key`` is not set (Flux's order)
DEFAULT_KEYS = ("value", "value.yaml")


@dataclass(frozen=True)
class Target:
    """The cluster a Sync's objects live in: the client acting as the Sync, and its discovery."""

    client: KubeClient
    discovery: Discovery


def _forget_remote(memory: SyncMemory) -> None:
    """Drop the remote client and what was learnt about the objects of the cluster it reached:
    what was applied where (resourceVersions, digests) says nothing about another cluster."""
    if memory.remote is not None:
        memory.remote[1].close()
        memory.remote = None
    memory.records, memory.set_by = {}, {}
    memory.desired, memory.desired_key = None, ()


def target_cluster(ctx: OperatorContext, memory: SyncMemory, parsed: SyncSpec) -> Target:
    """The client and discovery the cluster phases of ``parsed`` use."""
    namespace = parsed.meta.namespace
    local = ctx.client_as(namespace, parsed.service_account)
    ref = parsed.kube_config
    if ref is None:
        if memory.remote is not None:  # the Sync no longer targets a remote cluster
            _forget_remote(memory)
        return Target(local, ctx.discovery)
    data, version = read_secret_data(local, namespace, ref.secret, purpose="spec.kubeConfig")
    wanted = (ref.key,) if ref.key else DEFAULT_KEYS
    key = next((k for k in wanted if k in data), None)
    if key is None:
        raise ConfigError(
            f"spec.kubeConfig: Secret {namespace}/{ref.secret} has no key " + " or ".join(wanted)
        )
    source = f"Secret {namespace}/{ref.secret} key {key}"
    kept = (f"{namespace}/{ref.secret}/{key}", version)
    if memory.remote is not None and memory.remote[0] == kept:
        client, discovery = memory.remote[1], memory.remote[2]
    else:
        config = parse_kubeconfig(data[key], source=source)
        check_allowed(config.server, ctx.settings.remote_cluster_addresses, source=source)
        client = remote_client(
            config,
            source=source,
            timeout=ctx.settings.api_timeout,
            halted=ctx.client.halted,  # a stopping replica stops writing everywhere
        )
        _forget_remote(memory)
        discovery = Discovery(client)
        memory.remote = (kept, client, discovery)
    if parsed.service_account:
        client = client.impersonating(Identity.service_account(namespace, parsed.service_account))
    return Target(client, discovery)
