"""One running operator driven into every condition the alerts of deploy/monitoring/ name.

Why a scenario of its own (used by test_monitoring.py): an alert expression is only checked when it
is evaluated over what an operator really exposes. So one operator, in a namespace of its own on the
test tier's cluster, is first brought to a healthy state and scraped (the *baseline*), then driven
into the four conditions and scraped again (*after*):

- a Sync whose new revision holds a file encrypted for a key the cluster lacks (DecryptionFailed);
- a Sync whose path does not exist (not Ready);
- a KeyRing with a 20 s rotation interval whose Vault (a real OpenBao) went away after its first
  key, so the operator cannot rotate it and the key grows older than the interval;
- webhook deliveries with a wrong and a malformed signature.

Everything started here is stopped in ``finally`` blocks (the operator thread, OpenBao by PID).
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from prometheus_client.parser import text_string_to_metric_families

from sealed_gitops.cluster import KubeClient
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.testing.openbao import OpenBaoServer
from tests.keys_lifecycle.conftest import create_keyring, keyring_path, sops_secret, wait_keys
from tests.operator.conftest import Setup, is_ready, ready, wait_for
from tests.operator.manifests import secret_doc

__all__ = ["KEY_INTERVAL", "Scenario", "Scrape", "run_scenario", "samples_of"]

#: The KeyRing's rotation interval in seconds: long enough to take the baseline before it falls
#: due on a loaded machine, short enough for the test to wait it out.
KEY_INTERVAL = 20
#: Waits on the operator: CI runs on a loaded machine.
WAIT = 120.0

#: The series a family of each type is exposed as (prometheus_client's text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
}

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


@dataclass(frozen=True)
class Scrape:
    """One ``/metrics`` answer: its text and its samples."""

    text: str

    @property
    def samples(self) -> Samples:
        return samples_of(self.text)

    @property
    def names(self) -> set[str]:
        """Every series name the scrape declares: those with samples, and those of a family
        that has no child yet (a labelled counter before its first count: ``# TYPE`` only)."""
        names = {name for name, _ in self.samples}
        for family in text_string_to_metric_families(self.text):
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        return names

    def value(self, metric: str, /, **labels: str) -> float | None:
        return self.samples.get((metric, tuple(sorted(labels.items()))))


@dataclass(frozen=True)
class Scenario:
    namespace: str
    baseline: Scrape
    after: Scrape


def samples_of(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(thread: OperatorThread) -> Scrape:
    url = f"http://127.0.0.1:{thread.ports.metrics}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return Scrape(answer.read().decode())


def _post_hook(thread: OperatorThread, namespace: str, signature: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{thread.ports.webhook}/hook/{namespace}/app",
        data=b'{"ref": "refs/heads/main"}',
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - http://127.0.0.1
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _not_ready_for(env: Setup, name: str, reason: str | None = None) -> dict[str, Any] | None:
    """The Sync's Ready condition once False (for ``reason`` when given), past the start-up
    race with its Repository."""
    cond = ready(env.kube.sync(name))
    if not cond or cond["status"] != "False" or cond["reason"] == "DependencyNotReady":
        return None
    return cond if reason is None or cond["reason"] == reason else None


def _young_key(scrape: Scrape, labels: dict[str, str]) -> Scrape | None:
    """``scrape`` when the KeyRing's active key is in the first half of its interval."""
    age = scrape.value("sealed_gitops_keyring_active_key_age_seconds", **labels)
    return scrape if age is not None and age < KEY_INTERVAL / 2 else None


def _start_operator(kubeconfig: Path, namespace: str, cache: Path) -> OperatorThread:
    settings = OperatorSettings(
        namespaces=[namespace],
        kubeconfig=str(kubeconfig),
        cache_dir=cache,
        metrics_port=0,
        webhook_port=0,
        allowed_schemes=frozenset({"file"}),
        leader_lease=f"op-{uuid.uuid4().hex[:6]}",
        leader_namespace=namespace,
        min_backoff=0.5,
        max_backoff=2.0,
    )
    return OperatorThread(settings).start()


@contextlib.contextmanager
def run_scenario(
    env: Setup, api: KubeClient, *, kubeconfig: Path, cache: Path, bao: OpenBaoServer
) -> Iterator[Scenario]:
    """Drive one operator from healthy to the four conditions; the two scrapes."""
    ns = env.namespace
    env.secret_object("hook-token", {"token": "monitoring-webhook-secret"})
    env.secret_object("vault-token", {"token": bao.token})
    env.push({"deploy/db.yaml": env.encrypt(secret_doc("db", ns, password="monitoring-one"))})
    env.objects(repository_spec={"webhook": {"secretRef": {"name": "hook-token"}}})
    thread = _start_operator(kubeconfig, ns, cache)
    try:
        wait_for(lambda: is_ready(env.kube.sync()), timeout=WAIT, what="the Sync Ready")
        create_keyring(
            api,
            ns,
            backend="vault",
            rotationInterval=f"{KEY_INTERVAL}s",
            vault={
                "address": bao.address,
                "kvPath": f"secret/data/sealed-gitops/{ns}/cluster",
                "auth": {"tokenSecretRef": {"name": "vault-token"}},
            },
        )
        wait_keys(env.kube, ns)
        labels = {"namespace": ns, "keyring": "cluster"}
        # Healthy means a key well within its interval; one that aged meanwhile (a slow machine)
        # is rotated by the operator while Vault is still up.
        baseline = wait_for(
            lambda: _young_key(_scrape(thread), labels),
            timeout=WAIT,
            what="a baseline scrape with a young active key",
        )
        # Vault goes away: every later KeyRing pass fails, none can rotate.
        bao.stop()
        # A revision with a file for a key the cluster does not hold.
        other = str(pyrage.x25519.Identity.generate().to_public())
        env.push({"deploy/db.yaml": sops_secret(other, "db", ns, password="monitoring-two")})
        env.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "missing", "namespace": ns},
                "spec": {
                    "repositoryRef": {"name": "app"},
                    "path": "./nowhere",
                    "interval": "1s",
                    "retryInterval": "1s",
                    "decryption": {"secretRef": {"name": "sops-keys"}},
                },
            }
        )
        assert _post_hook(thread, ns, "sha256=" + "0" * 64) == 401  # wrong signature
        assert _post_hook(thread, ns, "sha1=not-a-signature") == 401  # malformed
        wait_for(
            lambda: _not_ready_for(env, "app", "DecryptionFailed"),
            timeout=WAIT,
            what="Sync app Ready=False DecryptionFailed",
        )
        wait_for(lambda: _not_ready_for(env, "missing"), timeout=WAIT, what="Sync missing failed")
        wait_for(
            lambda: (ready(env.kube.get(keyring_path(ns)) or {}) or {}).get("status") == "False",
            timeout=WAIT,
            what="the KeyRing to report its store unreachable",
        )
        after = wait_for(
            lambda: (
                (s := _scrape(thread))
                and (s.value("sealed_gitops_keyring_active_key_age_seconds", **labels) or 0)
                > KEY_INTERVAL
                and s
            ),
            timeout=WAIT,
            what="the active key to pass its rotation time",
        )
        yield Scenario(namespace=ns, baseline=baseline, after=after)
    finally:
        thread.stop()
