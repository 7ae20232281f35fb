"""Leader election on a coordination.k8s.io Lease: with two replicas, only one reconciles.

Why our own and not kopf's peering: kopf's peering pauses operators of equal priority instead of
electing one, and a GitOps operator must keep exactly one writer while a standby waits. The rule is
the one client-go's leaderelection uses: take the Lease when it is free or expired, renew it well
before it expires, and stop working the moment a renewal fails past the deadline (the process then
exits, and its pod restarts as a standby). Optimistic concurrency on resourceVersion means two
candidates can never both win the same round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiConflict, ApiNotFound, ClusterError, ConfigError
from sealed_gitops.plan import names

__all__ = ["Leadership"]

log = logging.getLogger(__name__)


def _micro_time(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float:
    if not text:
        return 0.0
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


class Leadership:
    """One candidate for one Lease."""

    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: float = 15.0,
    ) -> None:
        self.client = client
        # Both go into the Lease's URL; a shard name (--shard) is part of the Lease name.
        self.namespace = names.namespace(namespace, field="Lease namespace")
        self.name = names.object_name(name, field="Lease name")
        self.identity = identity
        self.duration = duration
        self.leading = False
        self._renewed_at = 0.0
        #: who held the Lease at the last round this candidate did not win (for the log)
        self.holder: str | None = None

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _spec(self, current: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time()
        spec = dict((current or {}).get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = transitions + (1 if current else 0)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=max(int(self.duration), 1),
            renewTime=now,
        )
        return spec

    def try_acquire(self) -> bool:
        """One round: True when this candidate holds the Lease afterwards."""
        what = f"Lease {self.namespace}/{self.name}"
        try:
            current = self.client.request("GET", self._path, action="read", what=what)
        except ApiNotFound:
            current = None
        if current is not None:
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity")
            expires = _parse(spec.get("renewTime")) + float(spec.get("leaseDurationSeconds") or 0)
            if holder and holder != self.identity and time.time() < expires:
                self.holder = str(holder)
                return False
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": self._spec(current),
        }
        try:
            if current is None:
                try:
                    self.client.request(
                        "POST", self._path.rsplit("/", 1)[0], body=body, action="create", what=what
                    )
                except ApiNotFound as exc:
                    # Not "another replica holds it": nobody can, the namespace is missing
                    raise ConfigError(
                        f"cannot create {what}: namespace {self.namespace} does not exist "
                        f"(create it: kubectl create namespace {self.namespace}, or pass "
                        "--lease-namespace, or --no-leader-election for one replica)"
                    ) from exc
            else:
                metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.client.request("PUT", self._path, body=body, action="renew", what=what)
        except ApiConflict:
            self.holder = "another replica"  # someone else wrote first this round
            return False
        self._renewed_at = time.monotonic()
        return True

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until leading (True) or until ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            self.holder = None
            try:
                if await asyncio.to_thread(self.try_acquire):
                    self.leading = True
                    log.info(
                        "leading as %s (Lease %s/%s)", self.identity, self.namespace, self.name
                    )
                    return True
            except ClusterError as exc:
                log.warning("leader election: %s", exc)
            if self.holder is not None and not announced:
                log.info(
                    "standing by: %s holds Lease %s/%s", self.holder, self.namespace, self.name
                )
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.duration / 5)
        return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew until ``stop``; on a lost Lease, set ``stop`` (the operator must not go on)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.duration / 3)
                break
            except TimeoutError:
                pass
            try:
                renewed = await asyncio.to_thread(self.try_acquire)
            except ClusterError as exc:
                log.warning("leader election: cannot renew: %s", exc)
                renewed = False
            if not renewed and time.monotonic() - self._renewed_at > self.duration * 2 / 3:
                log.error("lost Lease %s/%s; stopping", self.namespace, self.name)
                self.leading = False
                stop.set()

    def release(self) -> None:
        """Give the Lease up on a clean exit so a standby takes over at once."""
        if not self.leading:
            return
        try:
            current = self.client.request(
                "GET", self._path, action="read", what=f"Lease {self.namespace}/{self.name}"
            )
            if (current.get("spec") or {}).get("holderIdentity") == self.identity:
                current["spec"]["holderIdentity"] = ""
                current["spec"]["leaseDurationSeconds"] = 1
                self.client.request(
                    "PUT",
                    self._path,
                    body=current,
                    action="release",
                    what=f"Lease {self.namespace}/{self.name}",
                )
        except ClusterError as exc:
            log.warning("leader election: cannot release: %s", exc)
        self.leading = False
