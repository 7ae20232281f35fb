"""What one operator process shares between its reconcile loops.

Why an object and not module state: several operators run in one process in tests and the demo;
each has its own API client, triggers, metrics and memory. The memory is what makes a no-op
reconcile free: per Sync, the (digest, resourceVersion) of each object at its last apply and the
keyring built from its decryption Secret (kept while that Secret's resourceVersion holds, so the
keyring's data-key cache survives between reconciles and an unchanged file costs no unwrap).

The API client is halted when the operator stops (or loses its Lease): a reconcile still running
in a worker thread then fails its next request at once instead of writing on as a replica that no
longer leads. What it already wrote is safe; the next leader converges from the cluster's state.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from sealed_gitops.cluster import Desired, Discovery, Identity, KubeClient, connect
from sealed_gitops.keys.discovery import keyring_from_secret_data
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.operator.metrics import Metrics
from sealed_gitops.operator.request_metrics import register_request_counter
from sealed_gitops.operator.resources import read_secret_data
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.operator.tenancy import write_account
from sealed_gitops.operator.triggers import Triggers
from sealed_gitops.pipeline import BuildResult
from sealed_gitops.plan import Inventory, ObjectId
from sealed_gitops.render.cache import DECRYPTED_SUPERSEDES_PARSED, ContentCache
from sealed_gitops.source import Artifact

__all__ = ["OperatorContext", "SyncMemory", "connect_for"]


def connect_for(settings: OperatorSettings) -> KubeClient:
    """The operator's client: ``settings.kubeconfig`` when given; else, in a pod (the API
    server's address in ``KUBERNETES_SERVICE_HOST``, no ``$KUBECONFIG``), the pod's service
    account; else ``$KUBECONFIG`` or ``~/.kube/config``, as kubectl chooses."""
    # $KUBECONFIG read now: the kubernetes package reads it once, when it is first imported.
    kubeconfig = settings.kubeconfig or os.environ.get("KUBECONFIG") or None
    in_cluster = not kubeconfig and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    return connect(
        kubeconfig,
        context=settings.context if kubeconfig else None,
        in_cluster=in_cluster,
        timeout=settings.api_timeout,
    )


@dataclass
class SyncMemory:
    """What the operator remembers about one Sync between reconciles (lost on restart: safe)."""

    records: dict[ObjectId, tuple[str, str]] = field(default_factory=dict)
    #: per Secret, the (commit, author) last written on it: a drift correction keeps them
    set_by: dict[ObjectId, tuple[str | None, str | None]] = field(default_factory=dict)
    keyring: KeyRing | None = None
    keyring_source: tuple[str, str] | None = None  # ("namespace/secret", resourceVersion)
    failures: int = 0
    last_revision: str | None = None
    #: parsed and decrypted files by content, valid for the keys in ``cache_keys``; a SOPS
    #: file's decrypted result only, not also its parsed ciphertext (render/cache.py)
    cache: ContentCache = field(
        default_factory=lambda: ContentCache(superseded=DECRYPTED_SUPERSEDES_PARSED)
    )
    cache_keys: tuple[object, ...] = ()
    #: the last complete build and what it was built from (commit, path, options, keys)
    built: BuildResult | None = None
    build_key: tuple[object, ...] = ()
    #: the last build's objects placed and prepared for apply, and what they were made from
    desired: Desired | None = None
    desired_key: tuple[object, ...] = ()
    #: the fingerprint of the last ``status.inventory`` read, its parsed form (2,000 ids cost a
    #: parse) and whether the parse writes back as exactly what was read
    inventory: tuple[bytes, Inventory, bool] | None = None
    #: the last next inventory, and the prepared objects and previous inventory it came from
    next_inventory: tuple[Desired, Inventory, Inventory] | None = None
    #: the remote cluster of ``spec.kubeConfig``: (Secret's resourceVersion and key, client)
    remote: tuple[tuple[str, str], KubeClient, Discovery] | None = None
    #: the health checks under way: ((revision, generation), deadline in time.monotonic()),
    #: so a wait spread over several reconciles keeps the deadline of its first apply
    health_wait: tuple[tuple[object, ...], float] | None = None
    #: the checkout of the last reconcile and what it was fetched with (operator/artifact_memo)
    artifact: tuple[tuple[object, ...], Artifact] | None = None


@dataclass
class RepositoryMemory:
    failures: int = 0


class OperatorContext:
    """Settings, the API client, triggers, metrics and per-object memory of one operator."""

    def __init__(self, settings: OperatorSettings, *, client: KubeClient | None = None) -> None:
        self.settings = settings
        # Its own halt: a client handed in (tests) may serve another operator that runs on.
        self.client = replace(client or connect_for(settings), halted=threading.Event())
        self.discovery = Discovery(self.client)
        self.triggers = Triggers()
        self.metrics = Metrics()
        register_request_counter(self.metrics.registry, self.client.counts)
        #: key of the HMAC over applied objects: digests of Secrets must not be guessable
        self.digest_key = secrets.token_bytes(32)
        self.cache_dir: Path | None = settings.cache_dir
        self._lock = threading.Lock()
        self._syncs: dict[tuple[str, str], SyncMemory] = {}
        self._repositories: dict[tuple[str, str], RepositoryMemory] = {}
        #: turns of the Sync reconcile loops (handlers.py): ``settings.concurrent_syncs`` at once
        self.sync_turns = asyncio.Semaphore(max(1, settings.concurrent_syncs))

    def sync_memory(self, namespace: str, name: str) -> SyncMemory:
        with self._lock:
            return self._syncs.setdefault((namespace, name), SyncMemory())

    def repository_memory(self, namespace: str, name: str) -> RepositoryMemory:
        with self._lock:
            return self._repositories.setdefault((namespace, name), RepositoryMemory())

    def forget_sync(self, namespace: str, name: str) -> None:
        with self._lock:
            memory = self._syncs.pop((namespace, name), None)
        if memory and memory.keyring:
            memory.keyring.close()
        if memory and memory.remote:
            memory.remote[1].close()
        self.triggers.forget("Sync", namespace, name)
        self.metrics.state.forget_sync(namespace, name)

    def client_as(self, namespace: str, service_account: str | None) -> KubeClient:
        """The client a Sync applies and prunes with: impersonating its ``serviceAccountName``,
        else the ``--default-service-account`` of its namespace; the operator's own client only
        when neither is set (see ``tenancy.write_account``, which also refuses system accounts)."""
        account = write_account(self.settings, namespace=namespace, service_account=service_account)
        if account is None:
            return self.client
        return self.client.impersonating(Identity.service_account(namespace, account))

    def keyring_for(self, memory: SyncMemory, *, namespace: str, secret: str) -> KeyRing:
        """The keyring of a decryption Secret (the Sync's own namespace's, or the operator's
        global one), rebuilt when it changes."""
        data, version = read_secret_data(self.client, namespace, secret, purpose="decryption keys")
        source = (f"{namespace}/{secret}", version)
        if memory.keyring is not None and memory.keyring_source == source:
            return memory.keyring
        if memory.keyring is not None:
            memory.keyring.close()
        memory.keyring = keyring_from_secret_data(
            data,
            # Only where the admin allowed (none by default): the address in a file is the
            # committer's choice, not the token owner's (issue 11, finding 4).
            vault_addresses=self.settings.vault_addresses,
            observer=self.metrics.observe_decryption,
            secret_name=f"{namespace}/{secret}",
        )
        memory.keyring_source = source
        return memory.keyring

    def backoff(self, failures: int, *, base: float) -> float:
        """Seconds before the next retry after ``failures`` consecutive failures."""
        delay = max(base, self.settings.min_backoff) * (2 ** max(failures - 1, 0))
        return float(min(delay, self.settings.max_backoff))

    def halt(self) -> None:
        """Refuse every further API request of this operator's reconciles (see the docstring)."""
        self.client.halted.set()

    def close(self) -> None:
        with self._lock:
            memories = list(self._syncs.values())
            self._syncs.clear()
        for memory in memories:
            if memory.keyring:
                memory.keyring.close()
            if memory.remote:
                memory.remote[1].close()
        self.client.close()
