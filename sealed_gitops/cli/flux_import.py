"""Flux ``GitRepository`` and ``Kustomization`` objects, converted to ``Repository`` and ``Sync``.

Why a module of its own: moving from Flux must not mean re-typing every object by hand, and it
must never lose a setting silently. A Flux field either has an exact counterpart here (url, ref,
intervals, path, prune, target namespace, service account, the SOPS decryption Secret, the
gates and substitution of :mod:`.flux_sync`, ...) or it is reported, per object and field, as one
that cannot carry over (:mod:`.flux_reader` reads each field and keeps that account). A setting
that asks for nothing (``force: false``, an empty list) is not reported: it has nothing to lose.
This module converts ``GitRepository`` objects and routes each object to its conversion.

The facts come from Flux's API types (source-controller ``api/v1/gitrepository_types.go`` and
kustomize-controller ``api/v1/kustomization_types.go``, and their ``v1beta2``); no code is
shared. Pure: objects in, objects and notes out, so the command (``import_cmds``) does the I/O.
Every name and namespace goes through ``plan/names`` before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .flux_reader import API_VERSION, NotCarried, Origin, Reader, asks_nothing
from .flux_sync import sync_from_kustomization

__all__ = [
    "GIT_REPOSITORY_VERSIONS",
    "KUSTOMIZATION_VERSIONS",
    "Conversion",
    "NotCarried",
    "convert",
]

#: The Flux API versions read; older ones (v1beta1) have other field names and are refused.
GIT_REPOSITORY_VERSIONS = ("source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2")
KUSTOMIZATION_VERSIONS = (
    "kustomize.toolkit.fluxcd.io/v1",
    "kustomize.toolkit.fluxcd.io/v1beta2",
)


@dataclass
class Conversion:
    """The objects written and what could not be carried over, in input order."""

    items: list[dict[str, Any]] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)


def convert(
    objects: Iterable[tuple[str, Any]], *, default_namespace: str = "default"
) -> Conversion:
    """Convert ``(where, object)`` pairs; objects of other kinds are skipped.

    ``where`` names the origin (file and document) for errors. A ``List`` (what ``kubectl get
    -o yaml`` prints) is unpacked. Raises :class:`InputError` on an object that is not a mapping
    or a Flux object whose fields have the wrong shape, naming ``where``.
    """
    result = Conversion()
    for where, obj in objects:
        _convert_one(Origin(where), obj, default_namespace, result)
    return result


def _convert_one(origin: Origin, obj: Any, default_namespace: str, out: Conversion) -> None:
    if obj is None:
        return  # an empty YAML document
    if not isinstance(obj, Mapping):
        raise origin.fail("not a Kubernetes object (a mapping with apiVersion and kind)")
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for index, item in enumerate(obj["items"]):
            _convert_one(Origin(f"{origin.where}, item {index}"), item, default_namespace, out)
        return
    api_version = obj.get("apiVersion")
    if kind == "GitRepository" and str(api_version).startswith("source.toolkit.fluxcd.io/"):
        _check_version(origin, api_version, GIT_REPOSITORY_VERSIONS)
        out.items.append(_repository(origin, obj, default_namespace, out.not_carried))
    elif kind == "Kustomization" and str(api_version).startswith("kustomize.toolkit.fluxcd.io/"):
        _check_version(origin, api_version, KUSTOMIZATION_VERSIONS)
        sync = sync_from_kustomization(origin, obj, default_namespace, out.not_carried)
        if sync is not None:
            out.items.append(sync)


def _check_version(origin: Origin, api_version: object, known: tuple[str, ...]) -> None:
    if api_version not in known:
        raise origin.fail(f"apiVersion {api_version!r} is not read (known: {', '.join(known)})")


# -- GitRepository -> Repository ---------------------------------------------------------------

#: Flux's ``ref.name`` is a full git reference; these prefixes have a counterpart.
_REF_PREFIXES = (("refs/heads/", "branch"), ("refs/tags/", "tag"))


def _repository(
    origin: Origin, obj: Mapping[str, Any], default_namespace: str, notes: list[NotCarried]
) -> dict[str, Any]:
    r = Reader(origin, obj, default_namespace)
    spec: dict[str, Any] = {}
    url = r.string("url")
    if url is None:
        raise origin.fail(f"{r.where('url')} is required")
    spec["url"] = url
    ref = _ref(r, notes)
    if ref:
        spec["ref"] = ref
    for key in ("interval", "timeout"):
        value = r.duration(key)
        if value is not None:
            spec[key] = value
    secret = r.secret_ref(r.get("secretRef"), path="secretRef")
    if secret:
        spec["secretRef"] = secret
    verify = _verify(r, notes)
    if verify:
        spec["verify"] = verify
    if r.boolean("suspend"):
        spec["suspend"] = True
    r.rest(notes)
    return {"apiVersion": API_VERSION, "kind": "Repository", "metadata": r.metadata(), "spec": spec}


def _ref(r: Reader, notes: list[NotCarried]) -> dict[str, str]:
    ref = r.mapping("ref")
    out: dict[str, str] = {}
    # Flux's precedence (gitrepository_types.go): commit, then name, then semver, tag, branch.
    commit = r.string_at(ref.get("commit"), path="ref.commit")
    name = r.string_at(ref.get("name"), path="ref.name")
    semver = r.string_at(ref.get("semver"), path="ref.semver")
    tag = r.string_at(ref.get("tag"), path="ref.tag")
    branch = r.string_at(ref.get("branch"), path="ref.branch")
    if commit is not None:
        if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            raise r.origin.fail(f"{r.where('ref.commit')}: {commit!r} is not a commit id")
        out["commit"] = commit
        if branch is not None:
            # With a commit, Flux fetches the branch only to find the commit in it.
            r.note(notes, "ref.branch", "the commit is fetched directly; the branch is not checked")
    elif name is not None:
        for prefix, key in _REF_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                out[key] = name[len(prefix) :]
                break
        else:
            r.note(
                notes, "ref.name", f"only refs/heads/* and refs/tags/* are followed, not {name!r}"
            )
    elif semver is not None:
        out["semver"] = semver
    elif tag is not None:
        out["tag"] = tag
    elif branch is not None:
        out["branch"] = branch
    for key in ref:
        if key not in ("commit", "name", "semver", "tag", "branch") and not asks_nothing(ref[key]):
            r.note(notes, f"ref.{key}", "sealed-gitops has no such setting")
    return out


def _verify(r: Reader, notes: list[NotCarried]) -> dict[str, Any]:
    verify = r.mapping("verify")
    if not verify:
        return {}
    mode = verify.get("mode") or "HEAD"
    out: dict[str, Any] = {"mode": "HEAD"}
    if mode in ("Tag", "TagAndHEAD"):
        # Only commit signatures are checked here. Writing HEAD keeps a check (stricter for Tag:
        # the commit itself must then be signed) rather than none.
        r.note(
            notes,
            "verify.mode",
            f"{mode}: tag signatures are not checked; the commit's signature (HEAD) is",
        )
    elif mode != "HEAD":
        raise r.origin.fail(f"{r.where('verify.mode')}: {mode!r} is not HEAD, Tag or TagAndHEAD")
    secret = r.secret_ref(verify.get("secretRef"), path="verify.secretRef")
    if secret:
        out["secretRef"] = secret
    return out
