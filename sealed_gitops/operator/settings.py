"""Settings of one operator process, grouped, with the unit and the reason for each default.

Why a dataclass and not globals: tests and the demo run several operators in one process against
different emulators, and the CLI maps its flags onto these fields in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.sharding import Shard

__all__ = ["OperatorSettings", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None, *, default: float, what: str = "duration") -> float:
    """Seconds in a Go-style duration (``90s``, ``5m``, ``1h30m``, ``250ms``), or ``default``."""
    if text is None or str(text).strip() == "":
        return default
    raw = str(text).strip()
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or pos == 0:
        raise ConfigError(f"{what} {raw!r} is not a duration such as 30s, 5m or 1h30m")
    return total


@dataclass
class OperatorSettings:
    """What one operator process does and where."""

    #: namespaces to watch; empty means all namespaces
    namespaces: list[str] = field(default_factory=list)
    #: namespaces a Sync without serviceAccountName may write into besides its own; "*" for all.
    #: Empty (the default) keeps every tenant in its own namespace.
    target_namespace_allowlist: list[str] = field(default_factory=list)
    #: kubeconfig path; None means in-cluster configuration (or $KUBECONFIG)
    kubeconfig: str | None = None
    #: the kubeconfig context to use (None: the file's current-context)
    context: str | None = None
    #: where Git checkouts are cached; one directory per remote
    cache_dir: Path | None = None
    #: port of the Prometheus metrics endpoint (0: pick a free one; None: off)
    metrics_port: int | None = 8080
    #: port of the webhook receiver (0: pick a free one; None: off)
    webhook_port: int | None = 9292
    #: address the HTTP servers bind to; 0.0.0.0 in a pod, 127.0.0.1 in tests and the demo
    bind_address: str = "127.0.0.1"
    #: seconds before the first retry after a failure; doubles up to max_backoff
    min_backoff: float = 2.0
    #: upper bound of the retry delay in seconds, so a long outage is noticed within minutes
    max_backoff: float = 300.0
    #: Git URL schemes a Repository may use; file:// is for the demo and tests only, since a
    #: tenant could otherwise read repositories on the operator's own filesystem
    allowed_schemes: frozenset[str] = frozenset({"git", "ssh", "https", "http"})
    #: seconds one Kubernetes API request may take before it counts as failed (ApiUnavailable);
    #: long enough for a slow apply of a big object, short enough that a hung server is retried
    api_timeout: float = 30.0
    #: Sync reconciles that run at once (Flux's ``--concurrent``); the others wait their turn.
    #: Each holds its build's passing memory while it runs (files, API answers, request bodies),
    #: and with the GIL a few already keep two cores busy: in ``benchmarks/scale.py`` at 20,000
    #: objects in 100 Syncs, six at once (the thread pool's size on 2 cores) peaked about 16 MB
    #: higher than three. At least 1.
    concurrent_syncs: int = 3
    #: seconds a single git fetch may take when the Repository does not say
    default_fetch_timeout: float = 60.0
    #: name of the Lease used for leader election; None runs without election (one replica)
    leader_lease: str | None = "sealed-gitops-operator"
    #: namespace of that Lease
    leader_namespace: str = "sealed-gitops-system"
    #: identity of this replica in the Lease (pod name in a cluster)
    identity: str = ""
    #: seconds a leader's Lease lasts without renewal before another replica may take it
    lease_duration: float = 15.0
    #: which Repositories, Syncs and KeyRings this operator reconciles (``--shard``,
    #: ``--selector``); the default takes every object without the ``sealed-gitops.io/shard``
    #: label, as Flux's unsharded controllers do. Its Lease is ``leader_lease`` as set here:
    #: the CLI names it ``shard.lease_name()`` so that each shard elects its own leader.
    shard: Shard = field(default_factory=Shard.of)
    #: Vault addresses (``https://host:port``) the operator may authenticate to with its own
    #: service-account JWT (a KeyRing's ``auth.kubernetes``). Empty (the default) refuses that
    #: auth altogether: a tenant's KeyRing could otherwise name a server of theirs and collect
    #: the operator's credential. A decryption Secret's ``sops.vault-token`` goes only there too,
    #: never to an address merely named in a committed file (empty: nowhere); a KeyRing's
    #: ``tokenSecretRef`` token too, once the list is set. Scheme included: plain ``http://`` is
    #: used only for an address the admin lists with ``http://``.
    vault_addresses: list[str] = field(default_factory=list)
    #: API servers (``https://host[:port]``) a Sync's ``spec.kubeConfig`` may point the operator
    #: at; ``*`` for any. Empty (the default) refuses remote clusters: a tenant's kubeconfig could
    #: otherwise make the operator send requests to any address its network reaches.
    remote_cluster_addresses: list[str] = field(default_factory=list)
    #: whether a reference may name another namespace (a Sync's ``keyRingRef.namespace``).
    #: False (the default, ``--no-cross-namespace-refs``) refuses them, except to KeyRings in
    #: ``shared_keyring_namespaces``: a tenant must not pick another tenant's objects.
    cross_namespace_refs: bool = False
    #: the admin's namespaces whose KeyRings serve other namespaces (those their
    #: ``allowedNamespaces`` list) even while cross-namespace references are refused
    shared_keyring_namespaces: list[str] = field(default_factory=lambda: ["sealed-gitops-system"])
    #: Vault KV paths a KeyRing may name in ``spec.vault.kvPath`` besides its own
    #: (``secret/data/sealed-gitops/<namespace>/<name>``): prefixes, where ``{namespace}`` and
    #: ``{name}`` stand for the KeyRing's. Empty (the default): only its own path, so a tenant's
    #: KeyRing cannot read another KeyRing's keys through the operator's Vault identity.
    vault_kv_path_prefixes: list[str] = field(default_factory=list)
    #: ServiceAccount (in the Sync's own namespace) that a Sync without ``serviceAccountName`` is
    #: applied and pruned as, so the API server checks a tenant's RBAC on every write (Flux's
    #: lockdown flag of the same name). deploy/ sets it; None (tests, the demo) writes with the
    #: operator's own rights, limited only by the operator's tenancy rule.
    default_service_account: str | None = None
    #: ``namespace/name`` of a decryption Secret (Flux's ``--sops-age-secret``) for every Sync
    #: that names neither ``decryption.secretRef`` nor ``keyRingRef``; a Sync's own wins. Off by
    #: default: every tenant could then have files encrypted for it applied in its namespace.
    global_decryption_secret: str | None = None
