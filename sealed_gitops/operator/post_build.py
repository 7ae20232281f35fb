"""A Sync's ``postBuild`` variables, read from the cluster for its build to substitute.

Why in the operator and not in the pipeline: the variables come from the cluster (ConfigMaps and
Secrets of the Sync's namespace), read with the rights the Sync applies with (its
``serviceAccountName``, else the namespace's default account; :meth:`OperatorContext.client_as`),
so a tenant can only name objects its own account may read, as in Flux. The substitution itself
is part of the build (:mod:`sealed_gitops.render.substitute`: one string at a time; values from
Secrets only into Secrets), and the variables are part of what a build is memoised on
(``building.py``). Placement and tenancy run on the substituted objects, so a variable cannot
move an object into a namespace the Sync may not write.

A no-op reconcile costs these reads (a variable may change without a commit) but no build.
"""

from __future__ import annotations

from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiNotFound, ConfigError
from sealed_gitops.operator.resources import read_secret_data
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.operator.specs_post_build import PostBuildSpec, SubstituteFromRef
from sealed_gitops.plan.names import segment
from sealed_gitops.render.substitute import Origin, Variable, Variables

__all__ = ["post_build_variables", "read_variables"]


def _config_map(
    client: KubeClient, namespace: str, ref: SubstituteFromRef
) -> dict[str, str] | None:
    what = f"ConfigMap {namespace}/{ref.name}"
    try:
        found = client.request(
            "GET",
            f"/api/v1/namespaces/{segment(namespace)}/configmaps/{segment(ref.name)}",
            action="read",
            what=what,
        )
    except ApiNotFound:
        return None
    return {str(k): str(v) for k, v in (found.get("data") or {}).items()}


def _secret(client: KubeClient, namespace: str, ref: SubstituteFromRef) -> dict[str, str] | None:
    try:
        data, _ = read_secret_data(client, namespace, ref.name, purpose="postBuild.substituteFrom")
    except ConfigError as exc:
        if isinstance(exc.__cause__, ApiNotFound):
            return None
        raise
    values: dict[str, str] = {}
    for key, raw in data.items():
        try:
            values[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            # The key names the entry; the bytes are a secret and are never shown.
            raise ConfigError(
                f"Secret {namespace}/{ref.name}: entry {key} is not UTF-8 text and cannot be "
                "substituted"
            ) from None
    return values


def read_variables(client: KubeClient, namespace: str, spec: PostBuildSpec) -> Variables:
    """The Sync's variables: each ``substituteFrom`` object in order, then ``substitute``
    (Flux's precedence: inline wins, a later object overrides an earlier one)."""
    layers: list[dict[str, Variable]] = []
    for index, ref in enumerate(spec.substitute_from):
        read = _config_map if ref.kind == "ConfigMap" else _secret
        values = read(client, namespace, ref)
        source = f"{ref.kind} {namespace}/{ref.name}"
        if values is None:
            if ref.optional:
                continue
            raise ConfigError(
                f"spec.postBuild.substituteFrom[{index}]: {source} not found (set optional: true "
                "to go on without it)"
            )
        origin = Origin.SECRET if ref.kind == "Secret" else Origin.CONFIG_MAP
        layers.append({k: Variable(v, origin, source) for k, v in values.items()})
    layers.append(
        {k: Variable(v, Origin.INLINE, "spec.postBuild.substitute") for k, v in spec.substitute}
    )
    return Variables.layered(layers)


def post_build_variables(client: KubeClient, parsed: SyncSpec) -> Variables | None:
    """The variables of ``parsed``'s ``postBuild``, read as the Sync (``client``); None
    without one. Read on every reconcile: a ConfigMap may change without a commit."""
    if parsed.post_build is None:
        return None
    return read_variables(client, parsed.meta.namespace, parsed.post_build)
