"""SyncSpec's postBuild and kubeConfig blocks: parsed once, hostile values refused with a
ConfigError naming the field (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.operator.specs_post_build import (
    MAX_INLINE_VALUE,
    MAX_SUBSTITUTE,
    MAX_SUBSTITUTE_FROM,
    KubeConfigRef,
    PostBuildSpec,
    SubstituteFromRef,
)


def _sync(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team-a", "name": "app"},
        "spec": {"repositoryRef": {"name": "app"}, **spec},
    }


def test_parsed_into_frozen_models() -> None:
    parsed = SyncSpec.parse(
        _sync(
            postBuild={
                "substitute": {"ENV": "prod", "_x1": ""},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "vars"},
                    {"kind": "Secret", "name": "secret-vars", "optional": True},
                ],
            },
            kubeConfig={"secretRef": {"name": "remote", "key": "config.yaml"}},
        )
    )
    assert parsed.post_build == PostBuildSpec(
        substitute=(("ENV", "prod"), ("_x1", "")),
        substitute_from=(
            SubstituteFromRef("ConfigMap", "vars", optional=False),
            SubstituteFromRef("Secret", "secret-vars", optional=True),
        ),
    )
    assert parsed.kube_config == KubeConfigRef(secret="remote", key="config.yaml")
    assert SyncSpec.parse(_sync()).post_build is None
    assert SyncSpec.parse(_sync(kubeConfig={"secretRef": {"name": "r"}})).kube_config == (
        KubeConfigRef(secret="r", key=None)
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"postBuild": "x"}, "spec.postBuild"),
        ({"postBuild": {"substitute": {"1BAD": "x"}}}, "spec.postBuild.substitute"),
        ({"postBuild": {"substitute": {"A-B": "x"}}}, "spec.postBuild.substitute"),
        ({"postBuild": {"substitute": {"A": 3}}}, "spec.postBuild.substitute.A"),
        (
            {"postBuild": {"substitute": {"A": "x" * (MAX_INLINE_VALUE + 1)}}},
            "spec.postBuild.substitute.A",
        ),
        (
            {"postBuild": {"substitute": {f"V{i}": "x" for i in range(MAX_SUBSTITUTE + 1)}}},
            "spec.postBuild.substitute",
        ),
        (
            {
                "postBuild": {
                    "substituteFrom": [{"kind": "ConfigMap", "name": "a"}]
                    * (MAX_SUBSTITUTE_FROM + 1)
                }
            },
            "spec.postBuild.substituteFrom",
        ),
        (
            {"postBuild": {"substituteFrom": [{"kind": "Pod", "name": "a"}]}},
            "spec.postBuild.substituteFrom[0].kind",
        ),
        (
            {"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "../../b/secrets/x"}]}},
            "spec.postBuild.substituteFrom[0].name",
        ),
        (
            {"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "a", "optional": "y"}]}},
            "spec.postBuild.substituteFrom[0].optional",
        ),
        ({"kubeConfig": {}}, None),
        ({"kubeConfig": {"secretRef": {}}}, "spec.kubeConfig.secretRef"),
        ({"kubeConfig": {"secretRef": {"name": "Bad/Name"}}}, "spec.kubeConfig.secretRef.name"),
        (
            {"kubeConfig": {"secretRef": {"name": "a", "key": "../x y"}}},
            "spec.kubeConfig.secretRef.key",
        ),
    ],
)
def test_hostile_values_are_refused_naming_the_field(
    spec: dict[str, Any], field: str | None
) -> None:
    if field is None:  # an empty block is no block
        assert SyncSpec.parse(_sync(**spec)).kube_config is None
        return
    with pytest.raises(ConfigError) as caught:
        SyncSpec.parse(_sync(**spec))
    assert field in str(caught.value)
    assert "x" * 100 not in str(caught.value)  # a long value is never echoed whole
