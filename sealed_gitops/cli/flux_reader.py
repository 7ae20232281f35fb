"""Typed, field-by-field reading of one Flux object, for ``import flux``.

Why a module of its own: both conversions (:mod:`.flux_import` for ``GitRepository``,
:mod:`.flux_sync` for ``Kustomization``) read a spec the same way: each accessor checks a field's
shape (naming file, document, object and field when it is wrong) and marks the field as read, so
that every field left unread is reported as one that cannot carry over. Nothing is dropped
without a word, and no value is ever put into a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import InputError
from sealed_gitops.plan import names

__all__ = ["API_VERSION", "DURATION", "NotCarried", "Origin", "Reader", "asks_nothing"]

GROUP = "sealed-gitops.io"
API_VERSION = f"{GROUP}/v1alpha1"

#: Our duration pattern (crds/*.yaml): Go durations in h, m, s and ms, which is what Flux users
#: write and what ``kubectl get`` prints (``10m0s``).
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")

#: Why each Flux field that has no counterpart cannot carry over; fields not listed get a
#: generic reason (Flux adds fields; an unknown one is reported, never dropped).
_REASONS: dict[str, str] = {
    # GitRepository
    "ignore": "sealed-gitops reads the Sync's path, with no .sourceignore rules",
    "include": "a Repository cannot include another repository",
    "recurseSubmodules": "submodules are not fetched",
    "proxySecretRef": "no proxy setting for git",
    "provider": "no cloud provider authentication for git (use secretRef credentials)",
    "sparseCheckout": "the whole tree is fetched",
    "accessFrom": "cross-namespace access is not granted this way",
    "gitImplementation": "one git implementation",
    # Kustomization
    "healthCheckExprs": "health is judged by kstatus; no CEL expressions",
    "patches": "put the patches in a kustomization.yaml in the repository",
    "patchesStrategicMerge": "put the patches in a kustomization.yaml in the repository",
    "patchesJson6902": "put the patches in a kustomization.yaml in the repository",
    "images": "put the images: override in a kustomization.yaml in the repository",
    "components": "list the components in a kustomization.yaml in the repository",
    "ignoreMissingComponents": "list the components in a kustomization.yaml in the repository",
    "namePrefix": "put namePrefix: in a kustomization.yaml in the repository",
    "nameSuffix": "put nameSuffix: in a kustomization.yaml in the repository",
    "commonMetadata": "put labels:/commonAnnotations: in a kustomization.yaml in the repository",
    "force": "objects are never deleted and recreated on an immutable-field change",
    "buildMetadata": "no build metadata",
    "validation": "objects are validated by the API server on apply",
}


@dataclass(frozen=True)
class NotCarried:
    """One Flux setting that the converted object does not have."""

    kind: str
    namespace: str
    name: str
    field: str
    reason: str

    def line(self) -> str:
        what = f"{self.kind} {self.namespace}/{self.name}"
        return f"{what}: {self.field} cannot carry over: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Origin:
    """Where an object came from, for error messages: ``clusters/prod.yaml, document 2``."""

    where: str

    def fail(self, message: str) -> InputError:
        return InputError(f"{self.where}: {message}")


class Reader:
    """Typed access to one object's spec; each accessor marks its field as carried over."""

    def __init__(self, origin: Origin, obj: Mapping[str, Any], default_namespace: str) -> None:
        self.origin = origin
        self.kind = str(obj["kind"])
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping):
            raise origin.fail(f"{self.kind} has no metadata")
        self.name = names.object_name(meta.get("name"), field=f"{origin.where}: metadata.name")
        self.namespace = names.namespace(
            meta.get("namespace") or default_namespace, field=f"{origin.where}: metadata.namespace"
        )
        labels = meta.get("labels")
        self.labels = dict(labels) if isinstance(labels, Mapping) and labels else None
        spec = obj.get("spec")
        if not isinstance(spec, Mapping):
            raise origin.fail(f"{self.kind} {self.namespace}/{self.name} has no spec")
        self.spec = spec
        self.used: set[str] = set()

    def where(self, path: str) -> str:
        return f"{self.origin.where}: {self.kind} {self.namespace}/{self.name}: spec.{path}"

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.spec.get(key)

    def string(self, key: str) -> str | None:
        return self.string_at(self.get(key), path=key)

    def string_at(self, value: Any, *, path: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.origin.fail(f"{self.where(path)} must be a string")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.origin.fail(f"{self.where(key)} must be true or false")
        return value

    def duration(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not DURATION.fullmatch(value):
            raise self.origin.fail(
                f"{self.where(key)}: {value!r} is not a duration sealed-gitops reads "
                "(hours, minutes, seconds and milliseconds, e.g. 10m or 1h30m)"
            )
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        return self.mapping_at(self.get(key), path=key)

    def mapping_at(self, value: Any, *, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.origin.fail(f"{self.where(path)} must be a mapping")
        return value

    def secret_ref(self, value: Any, *, path: str) -> dict[str, str] | None:
        ref = self.mapping_at(value, path=path)
        if not ref:
            return None
        name = names.object_name(ref.get("name"), field=self.where(f"{path}.name"))
        return {"name": name}

    def rest(self, notes: list[NotCarried]) -> None:
        """Report every field of the spec not read: nothing is dropped without a word."""
        for key, value in self.spec.items():
            if key in self.used or asks_nothing(value):
                continue
            self.note(notes, key, _REASONS.get(key) or "sealed-gitops has no such setting")

    def note(self, notes: list[NotCarried], path: str, reason: str) -> None:
        notes.append(NotCarried(self.kind, self.namespace, self.name, f"spec.{path}", reason))

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = self.labels
        return meta


def asks_nothing(value: Any) -> bool:
    return value is None or value is False or value in ("", [], {})
