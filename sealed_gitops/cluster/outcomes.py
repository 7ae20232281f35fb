"""What an apply did, per object: the outcome types :func:`sealed_gitops.cluster.apply` returns.

Why apart from the applier: the operator's status, Events, metrics and audit lines are written
from these values alone, and a reader of those should not need the staging and writing code to
know what a ``FAILED`` or a drift-corrected ``CONFIGURED`` means. Pure: no I/O.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from enum import StrEnum

from sealed_gitops.cluster.drift import Drift
from sealed_gitops.errors import ClusterError, OwnershipConflict
from sealed_gitops.plan.changes import ObjectChange
from sealed_gitops.plan.ids import Inventory, InventoryEntry, ObjectId

__all__ = ["ApplyResult", "ObjectOutcome", "Policy", "Result"]


class Policy(StrEnum):
    """What one failing object does to the rest (the Sync's ``failurePolicy``)."""

    ATOMIC = "Atomic"  # stop at the first failure; what follows is skipped
    ISOLATE = "Isolate"  # leave the failing object out, apply the rest


class Result(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted: an earlier object failed under the Atomic policy


@dataclass(frozen=True)
class ObjectOutcome:
    """What happened to one desired object. ``change`` holds a Secret's changed key names."""

    id: ObjectId
    result: Result
    version: str
    digest: str = ""
    resource_version: str = ""
    change: ObjectChange | None = None
    error: ClusterError | None = None
    #: set when the write restored the last applied state of an object Git did not change
    drift: Drift | None = None
    #: the commit annotation written (or kept) on a Secret, with its author: who set its values
    commit: str | None = None
    author: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.result.value} {self.id.describe()}: {self.error}"
        if self.change is not None and self.result in (Result.CREATED, Result.CONFIGURED):
            return self.change.describe()
        return f"{self.result.value} {self.id.describe()}"


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[ObjectOutcome, ...]
    #: every object was unchanged because its recorded (digest, resourceVersion) still matched:
    #: :attr:`records` then repeats the records given to the apply, and nothing was written
    quiet: bool = False

    @functools.cached_property
    def _results(self) -> collections.Counter[Result]:
        # Counted once: the status, Events and metrics of a reconcile ask for several counts.
        return collections.Counter(o.result for o in self.outcomes)

    def _count(self, *results: Result) -> int:
        return sum(self._results[r] for r in results)

    @property
    def applied(self) -> int:
        return self._count(Result.CREATED, Result.CONFIGURED)

    @property
    def unchanged(self) -> int:
        return self._count(Result.UNCHANGED)

    @property
    def failed(self) -> int:
        return self._count(Result.FAILED)

    @property
    def skipped(self) -> int:
        return self._count(Result.SKIPPED)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @property
    def errors(self) -> tuple[ObjectOutcome, ...]:
        return tuple(o for o in self.outcomes if o.result is Result.FAILED)

    @property
    def conflicts(self) -> tuple[ObjectOutcome, ...]:
        """The objects left alone because another Sync owns them (issue 15, Must 2)."""
        return tuple(o for o in self.outcomes if isinstance(o.error, OwnershipConflict))

    @property
    def corrected(self) -> tuple[ObjectOutcome, ...]:
        """The writes that corrected drift (Git did not change these objects)."""
        return tuple(o for o in self.outcomes if o.drift is not None and self._wrote(o))

    @property
    def changed(self) -> tuple[ObjectOutcome, ...]:
        """The writes that carried a change from Git."""
        return tuple(o for o in self.outcomes if o.drift is None and self._wrote(o))

    @staticmethod
    def _wrote(outcome: ObjectOutcome) -> bool:
        return outcome.result in (Result.CREATED, Result.CONFIGURED)

    @property
    def set_by(self) -> dict[ObjectId, tuple[str | None, str | None]]:
        """Per written Secret, the (commit, author) now on it: the next call's ``set_by``."""
        return {o.id: (o.commit, o.author) for o in self.outcomes if o.commit is not None}

    @property
    def records(self) -> dict[ObjectId, tuple[str, str]]:
        """Per applied or unchanged id, (digest, resourceVersion): next call's ``recorded``."""
        return {
            o.id: (o.digest, o.resource_version)
            for o in self.outcomes
            if o.result in (Result.CREATED, Result.CONFIGURED, Result.UNCHANGED)
        }

    @property
    def inventory(self) -> Inventory:
        """The objects now live as desired (failed and skipped ones left out).

        With Isolate, merge the previous inventory's entries for the failed ids back in (see
        :meth:`sealed_gitops.plan.Inventory.merge`) so that they are not pruned.
        """
        return Inventory(
            tuple(
                InventoryEntry(o.id, o.version)
                for o in self.outcomes
                if o.result not in (Result.FAILED, Result.SKIPPED)
            )
        )

    def next_inventory(self, previous: Inventory) -> Inventory:
        """The inventory to record and prune against: what is live as desired, plus the
        previous entries of objects that failed or were skipped (so they are not pruned and
        their previously applied version stays, issue 6 item 7)."""
        held = {o.id for o in self.outcomes if o.result in (Result.FAILED, Result.SKIPPED)}
        if not held:
            return self.inventory  # the common case: one sort of the entries, not two
        return self.inventory.merge(previous.restrict(held))
