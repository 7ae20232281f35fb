"""The verbs, with the object semantics of a real API server and no HTTP in sight.

Everything a client can observe about a write lives here: resourceVersion, uid and
creationTimestamp set by the server; generation bumped on changes outside metadata and status;
AlreadyExists, stale-version Conflicts, NotFound (also for a namespaced create in a missing
namespace); the status subresource split; finalizers holding a deletion with ``deletionTimestamp``;
namespace deletion cascading to its contents; CRDs turning into servable resources; ``dryRun``
persisting nothing; and managedFields kept for every manager (see :mod:`managed`).
"""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.testing.kube import managed
from sealed_gitops.testing.kube.patch import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_patch,
)
from sealed_gitops.testing.kube.resources import Registry, ResourceType
from sealed_gitops.testing.kube.selectors import Matcher
from sealed_gitops.testing.kube.status import (
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    status_body,
    unsupported_media_type,
)
from sealed_gitops.testing.kube.store import Store
from sealed_gitops.testing.kube.validation import check_update, normalize

__all__ = ["PATCH_TYPES", "Objects", "now"]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_NAMESPACES = ("", "namespaces")
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
#: generateName suffix alphabet of the real server (no vowels, no look-alike digits)
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
_STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "metadata"}
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    out["metadata"] = meta
    fields = [
        {k: v for k, v in e.items() if k != "time"}
        for e in obj["metadata"].get("managedFields") or []
    ]
    out["_fields"] = fields
    return out


_KEPT_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def _split_status(
    rt: ResourceType, old: dict[str, Any], obj: dict[str, Any], subresource: str
) -> tuple[dict[str, Any], str]:
    """The object a write produces, and the part of it the writer manages.

    ``/status`` changes only status; the main resource of a kind with a status subresource changes
    everything but status; server-owned metadata always comes from the stored object.
    """
    if subresource == "status":
        new = _copy(old)
        if "status" in obj:
            new["status"] = obj["status"]
        else:
            new.pop("status", None)
        return new, "status"
    new = obj
    if rt.status:
        if "status" in old:
            new["status"] = _copy(old["status"])
        else:
            new.pop("status", None)
    meta, old_meta = new["metadata"], old["metadata"]
    for keep in _KEPT_META:
        if keep in old_meta:
            meta[keep] = old_meta[keep]
        else:
            meta.pop(keep, None)
    return new, "main" if rt.status else "all"


class Objects:
    """The emulator's state and the verbs on it; the HTTP layer only translates."""

    def __init__(self, *, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._terminating: set[str] = set()
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
    ) -> dict[str, Any]:
        """POST; ``fields`` replaces the managedFields a plain create records (for apply)."""
        obj = self._incoming(rt, namespace, body)
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
        self._check_namespace(rt, ns, meta["name"])
        if rt.status and (rt.group, rt.plural) != _NAMESPACES:
            obj.pop("status", None)
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
            self._crd_accept(obj)
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
    ) -> dict[str, Any]:
        old = self.get(rt, namespace, name)
        obj = self._incoming(rt, namespace, body)
        if obj["metadata"].get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        wanted_rv = obj["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        return self._write(rt, old, obj, dry_run=dry_run, manager=manager, subresource=subresource)

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
    ) -> dict[str, Any]:
        if content_type == "application/apply-patch+yaml":
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
        patched = _copy(patched) if isinstance(patched, dict) else patched
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise bad_request("the patch did not produce an object with metadata")
        if patched["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        patched["metadata"]["name"] = name
        return self._write(
            rt, old, patched, dry_run=dry_run, manager=manager or "unknown", subresource=subresource
        )

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
        if rt.key == _NAMESPACES:
            return self._delete_namespace(rt, old)
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return old
            obj = _copy(old)
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

    def _incoming(self, rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the request body is not a JSON object")
        obj = _copy(body)
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        version = obj.get("apiVersion")
        if version and version.split("/")[0] != rt.api_version.split("/")[0] and rt.group:
            raise bad_request(
                f"the API version in the data ({version}) does not match the "
                f"expected API version ({rt.api_version})"
            )
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        if self.store.get(_NAMESPACES, "", namespace) is None:
            raise not_found("", "namespaces", namespace)
        if namespace in self._terminating:
            raise forbidden(
                f'{rt.plural}{"." + rt.group if rt.group else ""} "{name}" is forbidden: unable '
                f"to create new content in namespace {namespace} because it is being terminated",
                group=rt.group,
                resource=rt.plural,
                name=name,
            )

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
    ) -> dict[str, Any]:
        """Shared tail of PUT and PATCH: merge by subresource, validate, version, store."""
        new, part = _split_status(rt, old, obj, subresource)
        if subresource != "status":
            normalize(rt, new)
            check_update(rt, old, new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        if rt.generation and _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if rt.key == _CRDS and subresource != "status":
            self._crd_accept(new)
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
        applied = self._incoming(rt, namespace, body)
        if applied["metadata"].get("name") not in (None, name):
            raise bad_request("the name of the object does not match the name on the URL")
        applied["metadata"]["name"] = name
        live = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        part = "status" if subresource == "status" else "main" if rt.status else "all"
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
                seed,
                applied,
                manager=manager,
                force=force,
                api_version=rt.api_version,
                subresource="",
                part=part,
                now=now(),
            )
            fields = merged["metadata"].pop("managedFields")
            return self.create(
                rt, namespace, merged, dry_run=dry_run, manager=manager, fields=fields
            )
        wanted_rv = applied["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, _STALE)
        merged = managed.apply(
            live,
            applied,
            manager=manager,
            force=force,
            api_version=rt.api_version,
            subresource=subresource,
            part=part,
            now=now(),
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

    def _commit(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        obj: dict[str, Any],
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        if old is not None and _comparable(obj) == _comparable(old):
            return old  # a no-op write changes nothing, not even the resourceVersion
        if dry_run:
            return obj
        meta = obj["metadata"]
        deleting = meta.get("deletionTimestamp") and not meta.get("finalizers")
        # a namespace goes when its contents are gone (spec.finalizers), see _finish_namespace
        if old is not None and deleting and rt.key != _NAMESPACES:
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
        final = _copy(obj)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.remove(rt.key, final)
        self.on_removed(rt, final)
        if rt.key == _CRDS:
            for removed in self.registry.remove_crd(final["metadata"]["name"]):
                self.store.drop_bucket(removed.key)
            self.on_crd_change()
        namespace = final["metadata"].get("namespace", "")
        if namespace in self._terminating:
            self._finish_namespace(namespace)
        return final

    def _crd_accept(self, crd: dict[str, Any]) -> None:
        """Check a CRD the way the apiextensions server does and mark it Established."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        causes = []
        if not spec.get("group"):
            causes.append(("spec.group", "Required value"))
        if not names.get("plural") or not names.get("kind"):
            causes.append(("spec.names", "Required value: plural and kind are required"))
        elif name != f"{names['plural']}.{spec.get('group')}":
            causes.append(
                (
                    "metadata.name",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                )
            )
        if not spec.get("versions"):
            causes.append(
                (
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(("spec.scope", f"Unsupported value: {json.dumps(spec.get('scope'))}"))
        if causes:
            raise invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)
        stamp = now()
        accepted = {k: v for k, v in names.items()}
        accepted.setdefault("singular", names["kind"].lower())
        accepted.setdefault("listKind", f"{names['kind']}List")
        crd["status"] = {
            "acceptedNames": accepted,
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": stamp,
                },
            ],
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        }

    def _delete_namespace(self, rt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
        name = old["metadata"]["name"]
        if name not in self._terminating:
            obj = _copy(old)
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"
            old = self._commit(rt, old, obj, dry_run=False)
            self._terminating.add(name)
            for other in list(self.registry.all()):
                if not other.namespaced or self.registry.first(*other.key) is not other:
                    continue
                for item in list(self.store.items(other.key, name)):
                    self.delete(other, name, item["metadata"]["name"], dry_run=False)
            self._finish_namespace(name)
        return old

    def _finish_namespace(self, namespace: str) -> None:
        for rt in self.registry.all():
            if rt.namespaced and next(self.store.items(rt.key, namespace), None) is not None:
                return
        self._terminating.discard(namespace)
        ns = self.store.get(_NAMESPACES, "", namespace)
        if ns is not None:
            ns_type = self.registry.lookup("", "v1", "namespaces")
            assert ns_type is not None  # noqa: S101 - a built-in
            final = _copy(ns)
            final["metadata"]["resourceVersion"] = str(self.store.next_rv())
            final["spec"] = {"finalizers": []}
            self.store.remove(ns_type.key, final)
