"""The verbs, with the object semantics of a real API server and no HTTP in sight.

Everything a client can observe about a write lives here: resourceVersion, uid and
creationTimestamp set by the server; generation bumped on changes outside metadata and status;
AlreadyExists, stale-version Conflicts, NotFound (also for a namespaced create in a missing
namespace); the status subresource split; finalizers holding a deletion with ``deletionTimestamp``;
namespace deletion cascading to its contents; CRDs turning into servable resources; ``dryRun``
persisting nothing; and managedFields kept for every manager (see :mod:`managed`).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

from sealed_gitops.testing.kube import managed
from sealed_gitops.testing.kube.apply_schema import apply_problems, typed_patch_error
from sealed_gitops.testing.kube.builtin_fields import unknown_fields
from sealed_gitops.testing.kube.namespaces import NAMESPACES, Namespaces
from sealed_gitops.testing.kube.patch import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_patch,
)
from sealed_gitops.testing.kube.resources import Registry, ResourceType
from sealed_gitops.testing.kube.schema import admit
from sealed_gitops.testing.kube.selectors import Matcher
from sealed_gitops.testing.kube.shaping import (
    accept_crd,
    comparable,
    copy_obj,
    incoming,
    now,
    spec_part,
    split_status,
)
from sealed_gitops.testing.kube.status import (
    already_exists,
    bad_request,
    conflict,
    invalid,
    invalid_fields,
    not_found,
    status_body,
    unsupported_media_type,
)
from sealed_gitops.testing.kube.store import Store
from sealed_gitops.testing.kube.validation import DecodeError, check_update, normalize

__all__ = ["PATCH_TYPES", "Objects", "now"]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
#: generateName suffix alphabet of the real server (no vowels, no look-alike digits)
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
_STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class Objects:
    """The emulator's state and the verbs on it; the HTTP layer only translates."""

    def __init__(self, *, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.namespaces = Namespaces(store=store, registry=registry)
        #: called after a CRD is served or removed (the HTTP layer has nothing to refresh today)
        self.on_crd_change: Callable[[], None] = lambda: None
        #: called with every object that is finally removed (e.g. to revoke a ServiceAccount's
        #: tokens, as a real server stops accepting tokens bound to a deleted account)
        self.on_removed: Callable[[ResourceType, dict[str, Any]], None] = lambda rt, obj: None
        #: called with every object created (what a cluster's controllers do for a namespace)
        self.on_created: Callable[[ResourceType, dict[str, Any]], None] = lambda rt, obj: None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        found = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if found is None:
            raise not_found(rt.group, rt.plural, name)
        return found

    def list_page(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        match: Matcher | None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        items, token, remaining = self.store.list(
            rt.key,
            namespace=namespace if rt.namespaced else None,
            match=match,
            limit=limit,
            continue_token=continue_token,
        )
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if token:
            meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": items,
        }

    def lister(self, group: str, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Stored objects by (group, resource, namespace or None): the RBAC authorizer's view."""
        return list(self.store.items((group, plural), namespace))

    # -- writes --------------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        *,
        dry_run: bool,
        manager: str,
        fields: list[dict[str, Any]] | None = None,
        field_validation: str = "Warn",
        warnings: list[str] | None = None,
    ) -> dict[str, Any]:
        """POST; ``fields`` replaces the managedFields a plain create records (for apply).

        ``field_validation`` is the request's ``fieldValidation`` (Strict, Warn or Ignore);
        warnings for the ``Warning`` header are appended to ``warnings``.
        """
        obj = incoming(rt, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
            meta["name"] = prefix + "".join(secrets.choice(_SUFFIX) for _ in range(5))
        ns = meta.get("namespace", "")
        if self.store.get(rt.key, ns, meta["name"]) is not None:
            raise already_exists(rt.group, rt.plural, meta["name"])
        self.namespaces.check_create(rt, ns, meta["name"])
        if rt.status and (rt.group, rt.plural) != NAMESPACES:
            obj.pop("status", None)
        # unknown fields fail while decoding, before any validation (hence first)
        self._admit(rt, obj, None, field_validation, warnings)
        normalize(rt, obj)
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rt.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.key == _CRDS:
            accept_crd(obj)
        if fields is not None:
            meta["managedFields"] = fields
        else:
            meta["managedFields"] = managed.record_update(
                None,
                obj,
                manager=manager,
                api_version=rt.api_version,
                subresource="",
                part="main" if rt.status else "all",
                now=meta["creationTimestamp"],
            )
        return self._commit(rt, None, obj, dry_run=dry_run)

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        dry_run: bool,
        manager: str,
        subresource: str = "",
        field_validation: str = "Warn",
        warnings: list[str] | None = None,
    ) -> dict[str, Any]:
        old = self.get(rt, namespace, name)
        obj = incoming(rt, namespace, body)
        if obj["metadata"].get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        wanted_rv = obj["metadata"].get("resourceVersion")
        if not wanted_rv and rt.crd:
            # custom resources allow no unconditional update (kube-apiserver's CR strategy)
            raise invalid_fields(
                rt.group,
                rt.plural,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0: must be specified for an update",
                    )
                ],
            )
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        return self._write(
            rt,
            old,
            obj,
            dry_run=dry_run,
            manager=manager,
            subresource=subresource,
            field_validation=field_validation,
            warnings=warnings,
        )

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        dry_run: bool,
        manager: str | None,
        force: bool,
        subresource: str = "",
        field_validation: str = "Warn",
        warnings: list[str] | None = None,
    ) -> dict[str, Any]:
        if content_type == "application/apply-patch+yaml":
            try:
                return self._apply(
                    rt,
                    namespace,
                    name,
                    body,
                    dry_run=dry_run,
                    manager=manager,
                    force=force,
                    subresource=subresource,
                )
            except DecodeError as exc:
                # the field manager converts the merged object to its Go type: a 500 there
                raise exc.for_apply(namespace, name) from exc
        old = self.get(rt, namespace, name)
        if content_type == "application/json-patch+json":
            patched = apply_json_patch(old, body)
        elif content_type == "application/merge-patch+json":
            patched = apply_merge_patch(old, body)
        elif content_type == "application/strategic-merge-patch+json" and rt.strategic:
            patched = apply_strategic_patch(old, body)
        else:
            accepted = [t for t in PATCH_TYPES if rt.strategic or "strategic" not in t]
            raise unsupported_media_type(content_type, accepted)
        # merge patches share unchanged subtrees with the stored object, which must stay intact
        patched = copy_obj(patched) if isinstance(patched, dict) else patched
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise bad_request("the patch did not produce an object with metadata")
        if patched["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        patched["metadata"]["name"] = name
        try:
            return self._write(
                rt,
                old,
                patched,
                dry_run=dry_run,
                manager=manager or "unknown",
                subresource=subresource,
                field_validation=field_validation,
                warnings=warnings,
            )
        except DecodeError as exc:
            # a real server decodes the *patched* object and calls a failure an invalid patch
            raise exc.for_patch() from exc

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        dry_run: bool,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        old = self.get(rt, namespace, name)
        pre = preconditions or {}
        if (
            pre.get("resourceVersion")
            and pre["resourceVersion"] != old["metadata"]["resourceVersion"]
        ):
            raise conflict(
                rt.group,
                rt.plural,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{old['metadata']['resourceVersion']}",
            )
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                f"meta: {old['metadata']['uid']}",
            )
        if dry_run:
            return old
        if rt.key == NAMESPACES:
            return self._delete_namespace(rt, old)
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return old
            obj = copy_obj(old)
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(rt, old, obj, dry_run=False)
        gone = self._remove(rt, old)
        if rt.crd or rt.plural == "pods":
            return gone
        return status_body(
            200,
            "",
            details={
                "name": name,
                "kind": rt.plural,
                "uid": old["metadata"]["uid"],
                **({"group": rt.group} if rt.group else {}),
            },
        )

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        match: Matcher | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        listed = self.list_page(rt, namespace, match=match)
        deleted = []
        for obj in listed["items"]:
            meta = obj["metadata"]
            result = self.delete(rt, meta.get("namespace", ""), meta["name"], dry_run=dry_run)
            deleted.append(result if result.get("kind") != "Status" else obj)
        listed["items"] = deleted
        return listed

    # -- internals -----------------------------------------------------------------------------

    def _write(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        obj: dict[str, Any],
        *,
        dry_run: bool,
        manager: str,
        subresource: str,
        fields: list[dict[str, Any]] | None = None,
        field_validation: str = "Warn",
        warnings: list[str] | None = None,
    ) -> dict[str, Any]:
        """Shared tail of PUT and PATCH: merge by subresource, validate, version, store."""
        new, part = split_status(rt, old, obj, subresource)
        if subresource != "status":
            normalize(rt, new)
            check_update(rt, old, new)
        self._admit(rt, new, old, field_validation, warnings, status_only=subresource == "status")
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        if rt.generation and spec_part(new) != spec_part(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if rt.key == _CRDS and subresource != "status":
            accept_crd(new)
        if fields is not None:
            new["metadata"]["managedFields"] = fields
        else:
            new["metadata"]["managedFields"] = managed.record_update(
                old,
                new,
                manager=manager,
                api_version=rt.api_version,
                subresource=subresource,
                part=part,
                now=now(),
            )
        return self._commit(rt, old, new, dry_run=dry_run)

    def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        dry_run: bool,
        manager: str | None,
        force: bool,
        subresource: str,
    ) -> dict[str, Any]:
        if not manager:
            raise bad_request("PATCH, fieldManager is required for apply requests")
        applied = incoming(rt, namespace, body)
        if applied["metadata"].get("name") not in (None, name):
            raise bad_request("the name of the object does not match the name on the URL")
        applied["metadata"]["name"] = name
        if isinstance(body, dict):
            # the field manager converts the apply configuration to the schema's type first
            if rt.schema is not None:
                problems = apply_problems(body, rt.schema)
            else:
                unknown = unknown_fields(rt.group, rt.plural, body, drop=False)
                problems = [f".{path}: field not declared in schema" for path in unknown]
            if problems:
                raise typed_patch_error(rt, body, problems)
        live = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        part = "status" if subresource == "status" else "main" if rt.status else "all"
        options: dict[str, Any] = {"manager": manager, "force": force, "part": part, "now": now()}
        if live is None:
            if subresource:
                raise not_found(rt.group, rt.plural, name)
            seed = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "metadata": {
                    k: v for k, v in applied["metadata"].items() if k in ("name", "namespace")
                },
            }
            merged = managed.apply(
                seed, applied, api_version=rt.api_version, subresource="", **options
            )
            fields = merged["metadata"].pop("managedFields")
            return self.create(
                rt,
                namespace,
                merged,
                dry_run=dry_run,
                manager=manager,
                fields=fields,
                field_validation="Ignore",
            )
        wanted_rv = applied["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        merged = managed.apply(
            live, applied, api_version=rt.api_version, subresource=subresource, **options
        )
        return self._write(
            rt,
            live,
            merged,
            dry_run=dry_run,
            manager=manager,
            subresource=subresource,
            fields=merged["metadata"]["managedFields"],
        )

    def _admit(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        field_validation: str,
        warnings: list[str] | None,
        *,
        status_only: bool = False,
    ) -> None:
        """A custom resource against its CRD schema: pruned, defaulted, validated (schema.py)."""
        if not rt.crd or rt.schema is None:
            unknown = unknown_fields(rt.group, rt.plural, obj, drop=True)
            if unknown and field_validation == "Strict":
                listed = ", ".join(f'unknown field "{p}"' for p in unknown)
                raise DecodeError(rt, f"strict decoding error: {listed}")
            if warnings is not None and field_validation == "Warn":
                warnings.extend(f'unknown field "{p}"' for p in unknown)
            return
        found, errors = admit(
            rt,
            rt.schema,
            obj,
            old=old,
            field_validation=field_validation,
            status_only=status_only,
        )
        if errors:
            raise invalid_fields(
                rt.group,
                rt.kind,
                obj["metadata"].get("name", ""),
                [(e.field, e.reason, e.message) for e in errors],
            )
        if warnings is not None:
            warnings.extend(found)

    def _commit(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        obj: dict[str, Any],
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        if old is not None and comparable(obj) == comparable(old):
            return old  # a no-op write changes nothing, not even the resourceVersion
        if dry_run:
            return obj
        meta = obj["metadata"]
        deleting = meta.get("deletionTimestamp") and not meta.get("finalizers")
        # a namespace goes when its contents are gone (spec.finalizers), see namespaces.py
        if old is not None and deleting and rt.key != NAMESPACES:
            return self._remove(rt, obj)
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(rt.key, obj, event_type="ADDED" if old is None else "MODIFIED", prev=old)
        if old is None:
            self.on_created(rt, obj)
        if rt.key == _CRDS:
            self.registry.add_crd(obj)
            self.on_crd_change()
        return obj

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        final = copy_obj(obj)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.remove(rt.key, final)
        self.on_removed(rt, final)
        if rt.key == _CRDS:
            for removed in self.registry.remove_crd(final["metadata"]["name"]):
                self.store.drop_bucket(removed.key)
            self.on_crd_change()
        namespace = final["metadata"].get("namespace", "")
        self.namespaces.finish_if_empty(namespace)
        return final

    def _delete_namespace(self, rt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
        name = old["metadata"]["name"]
        if not self.namespaces.terminating(name):
            obj = copy_obj(old)
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"
            old = self._commit(rt, old, obj, dry_run=False)
            for other, item in self.namespaces.begin(name):
                self.delete(other, name, item["metadata"]["name"], dry_run=False)
            self.namespaces.finish_if_empty(name)
        return old
