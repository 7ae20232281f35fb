"""kustomize builds with the real kubectl: references checked first, SOPS documents restored."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.errors import PathError, RenderError
from sealed_gitops.render import DocKind, render
from sealed_gitops.render.kustomize import find_kubectl, is_remote, scan
from sealed_gitops.render.loader import load_bytes

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  labels:\n    app: db\n"
    "type: Opaque\nstringData:\n  password: canary-kustomize-3f9a\n"
)


def test_kubectl_is_the_venv_one() -> None:
    import sys

    assert find_kubectl() == str(Path(sys.executable).parent / "kubectl")


def test_build_with_bases_and_overlays(
    repo: Path, write: Callable[..., Path], kubectl: str
) -> None:
    write("base/kustomization.yaml", "resources:\n- cm.yaml\n")
    write("base/cm.yaml", CM.format(name="settings"))
    write("overlay/kustomization.yaml",
          "resources:\n- ../base\n- extra.yaml\nnamespace: team-a\n")
    write("overlay/extra.yaml", CM.format(name="extra"))
    docs = render(repo, "overlay", kubectl=kubectl)
    assert sorted(str(d.id) for d in docs) == [
        "team-a_extra__ConfigMap", "team-a_settings__ConfigMap"
    ]
    assert {d.via for d in docs} == {"overlay"}
    assert all(d.file == "overlay" for d in docs)


@pytest.mark.parametrize(
    "ref",
    [
        "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0",
        "github.com/org/repo/base?ref=main",
        "git::https://example.com/org/repo.git//base",
        "ssh://git@example.com/org/repo.git",
        "git@github.com:org/repo.git",
        "http://example.com/manifest.yaml",
    ],
)
@pytest.mark.parametrize("field", ["resources", "components"])
def test_remote_references_are_refused_before_kustomize_runs(
    repo: Path, write: Callable[..., Path], kubectl: str, ref: str, field: str
) -> None:
    write("app/kustomization.yaml", f"{field}:\n- {ref}\n")
    with pytest.raises(PathError) as info:
        render(repo, "app", kubectl="/nonexistent/kubectl-never-run")
    assert "remote" in str(info.value)
    assert str(info.value).startswith("app/kustomization.yaml")


def test_a_remote_base_in_a_nested_kustomization_is_found(
    repo: Path, write: Callable[..., Path]
) -> None:
    write("app/kustomization.yaml", "resources:\n- ../base\n")
    write("base/kustomization.yaml", "components:\n- ../comp\n")
    write("comp/kustomization.yaml",
          "kind: Component\nresources:\n- https://example.com/x.yaml\n")
    with pytest.raises(PathError, match=r"^comp/kustomization\.yaml: remote"):
        render(repo, "app", kubectl="/nonexistent/kubectl-never-run")


@pytest.mark.parametrize(
    ("kustomization", "extra"),
    [
        ("resources:\n- ../../outside\n", None),
        ("resources:\n- ../../../../../../etc/passwd\n", None),
        ("patches:\n- path: ../../secret-patch.yaml\n", None),
        ("configMapGenerator:\n- name: x\n  files:\n  - key=../../../etc/hostname\n", None),
        ("resources:\n- link\n", "link"),
        ("resources:\n- /etc/passwd\n", None),
    ],
    ids=["dotdot-dir", "dotdot-etc", "patch", "generator-file", "symlink", "absolute"],
)
def test_references_that_leave_the_root_are_refused(
    repo: Path, write: Callable[..., Path], kustomization: str, extra: str | None
) -> None:
    (repo.parent / "outside").mkdir(exist_ok=True)
    write("app/kustomization.yaml", kustomization)
    if extra:
        (repo / "app" / extra).symlink_to("/etc/passwd")
    with pytest.raises(PathError) as info:
        render(repo, "app", kubectl="/nonexistent/kubectl-never-run")
    assert str(info.value).startswith("app/kustomization.yaml")


def test_dotdot_inside_the_root_is_allowed(repo: Path, write: Callable[..., Path]) -> None:
    write("base/kustomization.yaml", "resources:\n- cm.yaml\n")
    write("base/cm.yaml", CM.format(name="a"))
    write("apps/x/kustomization.yaml", "resources:\n- ../../base\n")
    result = scan(repo, repo / "apps" / "x")
    assert result.kustomizations == ["apps/x/kustomization.yaml", "base/kustomization.yaml"]
    assert result.manifests == ["base/cm.yaml"]


@pytest.mark.parametrize(
    ("ref", "remote"),
    [("base", False), ("../base", False), ("cm.yaml", False), ("a//b", True),
     ("gh:org/repo", True), ("example.com/org/repo.git", True)],
)
def test_is_remote(ref: str, remote: bool) -> None:
    assert is_remote(ref) is remote


def test_kustomize_errors_become_render_errors(
    repo: Path, write: Callable[..., Path], kubectl: str
) -> None:
    write("app/kustomization.yaml", "resources:\n- cm.yaml\nnamePrefix: [not, a, string]\n")
    write("app/cm.yaml", CM.format(name="a"))
    with pytest.raises(RenderError) as info:
        render(repo, "app", kubectl=kubectl)
    assert str(info.value).startswith("app: kustomize build failed")


def test_missing_resource_is_a_render_error(repo: Path, write: Callable[..., Path]) -> None:
    write("app/kustomization.yaml", "resources:\n- missing.yaml\n")
    with pytest.raises(RenderError, match="does not exist"):
        render(repo, "app", kubectl="/nonexistent/kubectl-never-run")


def test_kustomize_timeout(repo: Path, write: Callable[..., Path], tmp_path: Path) -> None:
    slow = tmp_path / "slow-kubectl"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    write("app/kustomization.yaml", "resources: []\n")
    with pytest.raises(RenderError, match="timed out"):
        render(repo, "app", kubectl=str(slow), timeout=0.3)


def test_sops_secret_through_kustomize_is_restored_and_still_decrypts(
    repo: Path,
    write: Callable[..., Path],
    kubectl: str,
    sops_encrypt: Callable[[Path], None],
    sops_env: dict[str, str],
    sops_binary: str,
) -> None:
    secret = write("app/secret.yaml", SECRET)
    sops_encrypt(secret)
    write("app/cm.yaml", CM.format(name="plain"))
    write("app/kustomization.yaml", "resources:\n- secret.yaml\n- cm.yaml\n")
    original = secret.read_bytes()
    ((_, as_written),) = load_bytes(original, file="app/secret.yaml")

    # Fact: kustomize sorts mapping keys, so its raw output no longer verifies with sops.
    raw = subprocess.run([kubectl, "kustomize", str(repo / "app")], check=True,
                         capture_output=True, timeout=60).stdout
    sops_part = next(d for _, d in load_bytes(raw, file="out") if "sops" in d)
    assert sops_part == as_written and list(sops_part) != list(as_written)
    out = repo.parent / "raw-secret.yaml"
    part = next(p for p in re.split(r"(?m)^---\n", raw.decode()) if "sops:" in p)
    out.write_text(part)
    refused = subprocess.run([sops_binary, "decrypt", str(out)], env=sops_env,
                             capture_output=True, timeout=60, check=False)
    assert refused.returncode != 0 and b"MAC mismatch" in refused.stderr

    docs = render(repo, "app", kubectl=kubectl)
    by_kind = {d.kind: d for d in docs}
    restored = by_kind[DocKind.SOPS]
    assert (restored.file, restored.index, restored.via) == ("app/secret.yaml", 0, "app")
    assert restored.data == as_written
    assert list(restored.data) == list(as_written)  # the original order, which the MAC needs
    assert str(restored.id) == "_db__Secret"
    assert b"canary-kustomize-3f9a" not in original
    ok = subprocess.run([sops_binary, "decrypt", str(secret)], env=sops_env,
                        capture_output=True, timeout=60, check=True)
    assert b"canary-kustomize-3f9a" in ok.stdout


@pytest.mark.parametrize("transformer", ["namespace: team-a", "namePrefix: p-",
                                         "commonLabels:\n  team: a"])
def test_transformers_that_touch_a_sops_document_keep_it_tied_to_its_file(
    repo: Path,
    write: Callable[..., Path],
    kubectl: str,
    sops_encrypt: Callable[[Path], None],
    transformer: str,
) -> None:
    """kustomize's document is kept (the decryption stage checks it against the MAC-verified
    file: tests/flux/test_transformers.py), marked transformed and tied to its source."""
    secret = write("app/secret.yaml", SECRET)
    sops_encrypt(secret)
    write("app/kustomization.yaml", f"resources:\n- secret.yaml\n{transformer}\n")
    (doc,) = render(repo, "app", kubectl=kubectl)
    assert (doc.file, doc.index, doc.via, doc.kind) == ("app/secret.yaml", 0, "app", DocKind.SOPS)
    assert doc.transformed
    ((_, as_written),) = load_bytes(secret.read_bytes(), file="app/secret.yaml")
    assert doc.data != as_written and doc.data["sops"] == as_written["sops"]


def test_a_patch_file_outside_the_kustomization_directory_builds_as_in_flux(
    repo: Path, write: Callable[..., Path], kubectl: str
) -> None:
    """A patch file outside the kustomization's directory but inside the root: Flux builds it
    (no load restriction in its copy of the repository). kustomize still runs with
    LoadRestrictionsRootOnly; the file is placed under the directory in a copy of the build
    (render/relocate.py; tests/flux/test_outside_directory.py holds the restriction's tests)."""
    write("shared/patch.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
          "data:\n  k: patched\n")
    write("app/cm.yaml", CM.format(name="a"))
    write("app/kustomization.yaml",
          "resources:\n- cm.yaml\npatches:\n- path: ../shared/patch.yaml\n")
    [doc] = render(repo, "app", kubectl=kubectl)
    assert doc.data["data"] == {"k": "patched"}
