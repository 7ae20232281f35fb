"""Which URL serves a kind: API discovery with a cache that is refreshed on demand.

Why this module exists: the applier handles any kind a repository holds, including custom kinds
whose CRD is applied in the same reconcile, so the mapping from ``apiVersion``/``kind`` to a
resource path cannot be fixed in code. Discovery answers it per group-version
(``/api/v1``, ``/apis/GROUP/VERSION``); answers are cached because a reconcile asks thousands of
times, and a miss (a kind not served yet) re-reads that group-version once before failing, which
is what makes a CRD applied a moment ago usable without restarting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.errors import ApiNotFound, ClusterError
from sealed_gitops.plan.ids import split_api_version
from sealed_gitops.plan.names import segment

__all__ = ["Discovery", "Resource"]


@dataclass(frozen=True)
class Resource:
    """One served resource: where its objects live and whether they are namespaced."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        # segment(): percent-quoted, and "." / ".." refused, which quoting leaves alone and the
        # HTTP client would resolve into another path (issue 11, finding 1)
        if self.namespaced and namespace:
            base += f"/namespaces/{segment(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{segment(name)}"
        if subresource:
            base += f"/{subresource}"
        return base


class Discovery:
    """The resources of one API server, read lazily per group-version and cached."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._by_gv: dict[str, dict[str, Resource]] = {}

    def invalidate(self, api_version: str | None = None) -> None:
        """Forget one group-version (or all): the next lookup reads discovery again."""
        if api_version is None:
            self._by_gv.clear()
        else:
            self._by_gv.pop(api_version, None)

    def _load(self, api_version: str) -> dict[str, Resource]:
        group, version = split_api_version(api_version)
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            data = self._client.request("GET", path, action="discover", what=api_version)
        except ApiNotFound:
            data = {}
        kinds: dict[str, Resource] = {}
        for item in data.get("resources") or ():
            name = str(item.get("name", ""))
            if "/" in name:  # a subresource such as secrets/status
                continue
            kind = str(item.get("kind", ""))
            kinds.setdefault(
                kind, Resource(group, version, name, kind, bool(item.get("namespaced")))
            )
        self._by_gv[api_version] = kinds
        return kinds

    def find(self, api_version: str, kind: str) -> Resource | None:
        """The resource serving ``kind`` in ``api_version``, or None if the server has none."""
        kinds = self._by_gv.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = self._load(api_version)  # not cached, or cached before its CRD existed
        return kinds.get(kind)

    def resource(self, api_version: str, kind: str) -> Resource:
        """Like :meth:`find` but a missing kind is an error naming it."""
        found = self.find(api_version, kind)
        if found is None:
            raise ClusterError(f"the server does not serve kind {kind} in {api_version}")
        return found

    def for_object(self, obj: Mapping[str, Any]) -> Resource:
        return self.resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
