"""Objects from Git cannot carry a name or namespace that would change an API path.

Names in tenants' specs are checked when the spec is parsed (test_references.py); names of the
manifests a commit holds reach the same URLs when they are applied and pruned. Kubernetes admits
``:`` and more in some kinds' names (``system:controller:x`` ClusterRoles) but never ``/``, ``%``,
``.`` or ``..``, and namespaces are DNS labels: the build refuses anything else and names the file,
before anything is applied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.errors import FormatError
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render.decrypt import DecryptionKeys


def _configmap(namespace: str | None, name: str) -> str:
    ns = f"  namespace: {namespace!r}\n" if namespace is not None else ""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name!r}\n{ns}data:\n  a: b\n"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        (None, "../../kube-system/secrets/x"),
        (None, ".."),
        (None, "."),
        (None, "a%2F..%2Fb"),
        ("team-a/configmaps/x/../..", "app"),
        ("..", "app"),
        ("Team-A", "app"),
    ],
)
def test_a_manifest_name_that_would_change_a_url_fails_the_build_naming_the_file(
    tmp_path: Path, namespace: str | None, name: str
) -> None:
    (tmp_path / "evil.yaml").write_text(_configmap(namespace, name))
    with pytest.raises(FormatError) as caught:
        build(root=tmp_path, keys=DecryptionKeys())
    assert "evil.yaml" in str(caught.value)
    assert "not a valid" in str(caught.value)


def test_isolate_leaves_the_bad_object_out_and_applies_the_rest(tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text(_configmap(None, "../x"))
    (tmp_path / "good.yaml").write_text(_configmap(None, "app"))
    result = build(root=tmp_path, keys=DecryptionKeys(), policy=FailurePolicy.ISOLATE)
    assert [o.data["metadata"]["name"] for o in result.objects] == ["app"]
    assert [f.file for f in result.failures] == ["evil.yaml"]


@pytest.mark.parametrize("name", ["system:controller:app", "app.v1", "Upper.Case-ok"])
def test_names_kubernetes_admits_in_some_kinds_still_build(tmp_path: Path, name: str) -> None:
    (tmp_path / "ok.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        f"metadata:\n  name: {name!r}\nrules: []\n"
    )
    result = build(root=tmp_path, keys=DecryptionKeys())
    assert [o.data["metadata"]["name"] for o in result.objects] == [name]
