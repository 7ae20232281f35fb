"""The HTTP face of the resource API: turns requests into calls on :class:`Objects` and back.

Everything here is translation: query parameters (``dryRun``, ``fieldManager``, ``force``,
selectors, ``limit``/``continue``, ``watch``), request bodies (JSON, or YAML for apply patches),
``Accept: ...;as=Table`` for kubectl's printing, and status codes (201 for creates). The three
endpoints that are not storage (TokenRequest, TokenReview, SelfSubjectAccessReview) are delegated to
the authenticator and authorizer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import yaml
from aiohttp import web

from sealed_gitops.testing.kube import protobuf
from sealed_gitops.testing.kube.objects import Objects
from sealed_gitops.testing.kube.pod_logs import serve_pod_log
from sealed_gitops.testing.kube.requestinfo import RequestInfo
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.scale import get_scale, write_scale
from sealed_gitops.testing.kube.selectors import Matcher, parse_field_selector, parse_label_selector
from sealed_gitops.testing.kube.status import (
    ApiError,
    bad_request,
    invalid_fields,
    method_not_allowed,
    unsupported_media_type,
)
from sealed_gitops.testing.kube.table import to_table, wants_table
from sealed_gitops.testing.kube.watch import serve_watch

__all__ = ["ResourceHandler", "json_response"]

Special = Callable[[web.Request, RequestInfo, Any], Awaitable[dict[str, Any]]]
_DUMPS_SEPARATORS = (",", ":")
_BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def json_response(
    body: dict[str, Any], *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=_DUMPS_SEPARATORS).encode(),
        status=status,
        content_type="application/json",
    )
    for text in warnings or []:
        # RFC 7234 warn-code 299 with agent "-", the form client-go prints as "Warning: ..."
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{quoted}"')
    return response


_OPTIONS = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def _field_validation(request: web.Request, verb: str) -> str:
    """The ``fieldValidation`` parameter; without it a server warns about unknown fields."""
    value = request.query.get("fieldValidation") or "Warn"
    if value not in ("Ignore", "Warn", "Strict"):
        raise invalid_fields(
            "meta.k8s.io",
            _OPTIONS.get(verb, "CreateOptions"),
            "",
            [
                (
                    "fieldValidation",
                    "FieldValueNotSupported",
                    f"Unsupported value: {json.dumps(value)}: supported values: "
                    '"", "Ignore", "Strict", "Warn"',
                )
            ],
        )
    return value


def _manager(request: web.Request) -> str:
    given = request.query.get("fieldManager")
    if given:
        return given
    # A real server names an anonymous manager after the User-Agent up to its first "/".
    return request.headers.get("User-Agent", "unknown").split("/")[0][:128] or "unknown"


def _dry_run(request: web.Request, body: Any = None) -> bool:
    values = request.query.getall("dryRun", [])
    if isinstance(body, dict) and isinstance(body.get("dryRun"), list):
        values = [*values, *body["dryRun"]]
    for value in values:
        if value != "All":
            raise bad_request(f"unsupported dry run value: {value!r}")
    return bool(values)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    if content_type == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    if request.method != "PATCH" and content_type not in _BODY_TYPES:
        # A real server refuses a patch type (or anything else) on POST/PUT/DELETE.
        raise unsupported_media_type(content_type, list(_BODY_TYPES))
    try:
        if content_type in ("application/apply-patch+yaml", "application/yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body is not valid {content_type}: {exc}") from exc


class ResourceHandler:
    """Serves ``/api/...`` and ``/apis/...`` resource paths."""

    def __init__(
        self,
        *,
        objects: Objects,
        specials: dict[tuple[str, str, str], Special],
        bookmark_interval: float,
        pod_logs: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.objects = objects
        self.specials = specials
        self.bookmark_interval = bookmark_interval
        #: the text served as each pod's log (namespace, name): there is no kubelet here
        self.pod_logs = pod_logs if pod_logs is not None else {}

    async def __call__(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        registry = self.objects.registry
        rt = registry.lookup(info.api_group, info.api_version, info.resource)
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        special = self.specials.get((rt.group, rt.plural, info.subresource))
        if special is not None:
            if info.verb != "create":
                raise method_not_allowed(f"{info.verb} is not supported on {rt.plural}")
            return json_response(await special(request, info, await _body(request)), status=201)
        if rt.key == ("", "pods") and info.subresource == "log":
            return serve_pod_log(request, info, objects=self.objects, rt=rt, logs=self.pod_logs)
        scale = info.subresource == "scale" and any(
            sub[0] == "scale" for sub in rt.extra_subresources
        )
        if info.subresource and not (info.subresource == "status" and rt.status) and not scale:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = info.namespace if rt.namespaced else ""
        if rt.key == ("", "namespaces"):
            namespace = ""
        elif (rt.namespaced and info.namespace is None and info.verb not in ("list", "watch")) or (
            not rt.namespaced and info.namespace is not None
        ):
            raise ApiError(404, "the server could not find the requested resource")
        allowed = ("get", "patch", "update") if info.subresource else rt.verbs
        if info.verb not in allowed:
            raise method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        if scale:
            return await self._scale(request, info, rt, namespace or "")
        return await self._verb(request, info, rt, namespace or "")

    async def _scale(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str
    ) -> web.StreamResponse:
        if info.verb == "get":
            return json_response(get_scale(self.objects, rt, namespace, info.name or ""))
        scale = write_scale(
            self.objects,
            rt,
            namespace,
            info.name or "",
            method=request.method,
            content_type=request.headers.get("Content-Type", "").split(";")[0].strip(),
            body=await _body(request),
            dry_run=_dry_run(request),
            manager=_manager(request),
        )
        return json_response(scale)

    def _render(self, rt: ResourceType) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def render(obj: dict[str, Any]) -> dict[str, Any]:
            if obj.get("apiVersion") == rt.api_version:
                return obj
            return {**obj, "apiVersion": rt.api_version}  # another served version of a CRD

        return render

    def _matchers(self, request: web.Request, rt: ResourceType) -> Matcher | None:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(
            request.query.get("fieldSelector"),
            plural=rt.plural,
            kind=rt.kind,
            group=rt.group,
            custom=bool(rt.crd),
        )
        if labels and fields:
            return lambda o: labels(o) and fields(o)
        return labels or fields

    async def _verb(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str
    ) -> web.StreamResponse:
        if info.verb in ("get", "list", "watch"):
            return await self._read(request, info, rt, namespace)
        return await self._write(request, info, rt, namespace)

    async def _read(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str
    ) -> web.StreamResponse:
        objects = self.objects
        render = self._render(rt)
        table = wants_table(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "Metadata")
        name = info.name or ""
        if info.verb == "get":
            obj = render(objects.get(rt, namespace, name))
            if table:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                return json_response(to_table(rt, [obj], meta=meta, include=include))
            return json_response(obj)
        match = self._matchers(request, rt)
        scope = info.namespace if rt.namespaced else None
        if info.verb == "watch":
            out: Callable[[dict[str, Any]], dict[str, Any]] = render
            if table:

                def render_row(obj: dict[str, Any]) -> dict[str, Any]:
                    if obj.get("kind") != rt.kind or "name" not in obj["metadata"]:
                        return obj
                    meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                    return to_table(rt, [render(obj)], meta=meta, include=include)

                out = render_row
            return await serve_watch(
                request,
                rt=rt,
                store=objects.store,
                namespace=scope,
                match=match,
                render=out,
                bookmark_interval=self.bookmark_interval,
            )
        try:
            limit = int(request.query.get("limit") or 0)
        except ValueError as exc:
            raise bad_request("limit must be an integer") from exc
        listed = objects.list_page(
            rt, scope, match=match, limit=limit, continue_token=request.query.get("continue")
        )
        items = [render(o) for o in listed["items"]]
        if table:
            return json_response(to_table(rt, items, meta=listed["metadata"], include=include))
        listed["items"] = items
        return json_response(listed)

    async def _write(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str
    ) -> web.StreamResponse:
        objects = self.objects
        render = self._render(rt)
        name = info.name or ""
        warnings: list[str] = []
        validation = _field_validation(request, info.verb) if info.verb != "delete" else "Ignore"
        if info.verb == "create":
            body = await _body(request)
            obj = objects.create(
                rt,
                namespace,
                body,
                dry_run=_dry_run(request),
                manager=_manager(request),
                field_validation=validation,
                warnings=warnings,
            )
            return json_response(render(obj), status=201, warnings=warnings)
        if info.verb == "update":
            body = await _body(request)
            obj = objects.update(
                rt,
                namespace,
                name,
                body,
                dry_run=_dry_run(request),
                manager=_manager(request),
                subresource=info.subresource,
                field_validation=validation,
                warnings=warnings,
            )
            return json_response(render(obj), warnings=warnings)
        if info.verb == "patch":
            body = await _body(request)
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            existed = objects.store.get(rt.key, namespace, name) is not None
            obj = objects.patch(
                rt,
                namespace,
                name,
                content_type,
                body,
                dry_run=_dry_run(request),
                manager=request.query.get("fieldManager")
                or (None if content_type == "application/apply-patch+yaml" else _manager(request)),
                force=request.query.get("force") == "true",
                subresource=info.subresource,
                field_validation=validation,
                warnings=warnings,
            )
            return json_response(render(obj), status=200 if existed else 201, warnings=warnings)
        if info.verb == "delete":
            body = await _body(request)
            preconditions = body.get("preconditions") if isinstance(body, dict) else None
            obj = objects.delete(
                rt, namespace, name, dry_run=_dry_run(request, body), preconditions=preconditions
            )
            return json_response(obj if obj.get("kind") == "Status" else render(obj))
        if info.verb == "deletecollection":
            body = await _body(request)
            listed = objects.delete_collection(
                rt,
                info.namespace if rt.namespaced else None,
                match=self._matchers(request, rt),
                dry_run=_dry_run(request, body),
            )
            return json_response(listed)
        raise method_not_allowed("the server does not allow this method on the requested resource")
