"""The ``postBuild`` and ``kubeConfig`` blocks of a Sync's spec, parsed and checked.

Why a module beside ``specs.py``: both blocks are tenant input with their own limits (how many
variables, how long a value, which Secret key holds a kubeconfig) and :class:`SyncSpec` only holds
the result. The limits are the CRD's (``crds/sync.yaml``) said again here, since a spec may come
from an API server without our schema (an old CRD, a test) and these values reach requests,
memory and error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.plan import names
from sealed_gitops.render.substitute import NAME_PATTERN

__all__ = [
    "MAX_INLINE_VALUE",
    "MAX_SUBSTITUTE",
    "MAX_SUBSTITUTE_FROM",
    "KubeConfigRef",
    "PostBuildSpec",
    "SubstituteFromRef",
    "parse_kube_config",
    "parse_post_build",
]

#: entries of ``spec.postBuild.substitute`` (CRD ``maxProperties``)
MAX_SUBSTITUTE = 256
#: characters of one inline value (CRD ``maxLength``)
MAX_INLINE_VALUE = 16384
#: entries of ``spec.postBuild.substituteFrom`` (CRD ``maxItems``): each costs a GET per reconcile
MAX_SUBSTITUTE_FROM = 32
#: a Secret data key: what Kubernetes admits (``[-._a-zA-Z0-9]+``, at most 253)
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_VAR_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class SubstituteFromRef:
    """One ``substituteFrom`` entry: a ConfigMap or Secret of the Sync's own namespace."""

    kind: str  # "ConfigMap" or "Secret"
    name: str
    #: a missing object (or, for Flux, a forbidden read) is skipped instead of failing
    optional: bool


@dataclass(frozen=True)
class PostBuildSpec:
    """``spec.postBuild``: inline variables (they win) and the objects to read more from."""

    substitute: tuple[tuple[str, str], ...] = ()
    substitute_from: tuple[SubstituteFromRef, ...] = ()


@dataclass(frozen=True)
class KubeConfigRef:
    """``spec.kubeConfig.secretRef``: the Secret (Sync's namespace) holding a remote cluster's
    kubeconfig, and its key (None: ``value``, then ``value.yaml``, as Flux looks)."""

    secret: str
    key: str | None


def _mapping(value: Any, *, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field} must be an object")
    return value


def parse_post_build(spec: Mapping[str, Any]) -> PostBuildSpec | None:
    """``spec.postBuild`` checked, or None when absent or empty."""
    block = _mapping(spec.get("postBuild"), field="spec.postBuild")
    inline = _mapping(block.get("substitute"), field="spec.postBuild.substitute")
    if len(inline) > MAX_SUBSTITUTE:
        raise ConfigError(f"spec.postBuild.substitute has more than {MAX_SUBSTITUTE} entries")
    pairs: list[tuple[str, str]] = []
    for name, value in inline.items():
        if not isinstance(name, str) or not _VAR_NAME.match(name) or len(name) > 253:
            raise ConfigError(
                f"spec.postBuild.substitute: {str(name)[:64]!r} is not a variable name "
                "(letters, digits and '_', not starting with a digit)"
            )
        if not isinstance(value, str) or len(value) > MAX_INLINE_VALUE:
            raise ConfigError(
                f"spec.postBuild.substitute.{name} must be a string of at most "
                f"{MAX_INLINE_VALUE} characters"
            )
        pairs.append((name, value))
    sources = block.get("substituteFrom")
    if sources is None:
        sources = []
    if not isinstance(sources, list) or len(sources) > MAX_SUBSTITUTE_FROM:
        raise ConfigError(
            f"spec.postBuild.substituteFrom must be a list of at most {MAX_SUBSTITUTE_FROM} entries"
        )
    refs: list[SubstituteFromRef] = []
    for index, item in enumerate(sources):
        field = f"spec.postBuild.substituteFrom[{index}]"
        entry = _mapping(item, field=field)
        kind = entry.get("kind")
        if kind not in ("ConfigMap", "Secret"):
            raise ConfigError(f"{field}.kind must be ConfigMap or Secret")
        optional = entry.get("optional", False)
        if not isinstance(optional, bool):
            raise ConfigError(f"{field}.optional must be true or false")
        refs.append(
            SubstituteFromRef(
                kind=str(kind),
                name=names.object_name(entry.get("name"), field=f"{field}.name"),
                optional=optional,
            )
        )
    if not pairs and not refs:
        return None
    return PostBuildSpec(substitute=tuple(pairs), substitute_from=tuple(refs))


def parse_kube_config(spec: Mapping[str, Any]) -> KubeConfigRef | None:
    """``spec.kubeConfig`` checked, or None when absent."""
    block = _mapping(spec.get("kubeConfig"), field="spec.kubeConfig")
    if not block:
        return None
    ref = _mapping(block.get("secretRef"), field="spec.kubeConfig.secretRef")
    if not ref:
        raise ConfigError("spec.kubeConfig.secretRef is required with spec.kubeConfig")
    key = ref.get("key")
    if key in (None, ""):
        key = None
    elif not isinstance(key, str) or not _DATA_KEY.match(key):
        raise ConfigError(
            "spec.kubeConfig.secretRef.key must be a Secret key (letters, digits, '-', '_', '.')"
        )
    return KubeConfigRef(
        secret=names.object_name(ref.get("name"), field="spec.kubeConfig.secretRef.name"),
        key=key,
    )
