"""The native build of plain kustomizations (render/kustomize_native.py), by example.

Each eligible layout is built both ways and compared object for object, in order, with the real
``kubectl kustomize``; each ineligible one must fall back (the build returns None) and still
render through kustomize as before, with kustomize's result or error. The security checks of
the kustomize path (references inside the root, symlinks resolved, the SOPS checks of a moved
document) must hold on the native path too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.crypto.sops import yaml_load as sops_yaml
from sealed_gitops.errors import IntegrityError, PathError, ScopeMismatch, SealedGitopsError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import build
from sealed_gitops.render import DocKind, kustomize, loader, render
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.loader import load_bytes
from tests.render.kustomize_differential import as_text, kustomize_objects, native_objects

Write = Callable[[str, str], Path]

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    app: db\n"
    "type: Opaque\nstringData:\n  password: {value}\n"
)
DEPLOY = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n"
    "  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n"
)

#: layouts native builds: (files, the directory built)
ELIGIBLE: dict[str, dict[str, str]] = {
    "listing": {
        "app/kustomization.yaml": "resources:\n- b.yaml\n- a.yaml\n",
        "app/a.yaml": CM.format(name="a") + "---\n" + CM.format(name="c"),
        "app/b.yaml": DEPLOY.format(name="web") + "---\n# only a comment\n---\n",
    },
    "full-header-and-namespace": {
        "app/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "namespace: team-a\nresources:\n  - cm.yaml\n  - ./sub/s.yaml\n"
        ),
        "app/cm.yaml": CM.format(name="x").replace("  name: x\n", "  name: x\n  namespace: old\n"),
        "app/sub/s.yaml": SECRET.format(name="s", value="plain"),
    },
    "nested-namespaces": {
        "app/Kustomization": "namespace: outer\nresources:\n- base\n- top.yaml\n",
        "app/top.yaml": CM.format(name="top"),
        "app/base/kustomization.yml": "namespace: inner\nresources:\n- cm.yaml\n- deeper\n",
        "app/base/cm.yaml": CM.format(name="base"),
        "app/base/deeper/kustomization.yaml": "resources:\n- s.yaml\n",
        "app/base/deeper/s.yaml": SECRET.format(name="deep", value="v"),
    },
    "values-kept-as-written": {
        "app/kustomization.yaml": "resources:\n- cm.yaml\n",
        "app/cm.yaml": (
            'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: v\n  annotations: {a: "1"}\n'
            'data:\n  yes: on\n  n: "0777"\n  q: "1_000"\n  d: "2001-12-14"\n  e: ""\n'
            "  m: |\n    line one\n    line two\n  u: \u00e9t\u00e9 \u2603\n"
            "binaryData: {}\nimmutable: true\n"
        ),
    },
    "legacy-order": {
        "app/kustomization.yaml": "resources:\n- all.yaml\n",
        "app/all.yaml": "---\n".join(
            [
                DEPLOY.format(name="web"),
                "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n",
                CM.format(name="z"),
                "apiVersion: apps/v1\nkind: ConfigMap\nmetadata:\n  name: odd\n",
                CM.format(name="a").replace("  name: a\n", "  name: a\n  namespace: b\n"),
                "apiVersion: admissionregistration.k8s.io/v1\nkind: "
                "ValidatingWebhookConfiguration\nmetadata:\n  name: hook\n",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n",
            ]
        ),
    },
}

#: layouts that must go through kustomize (native returns None)
INELIGIBLE: dict[str, dict[str, str]] = {
    "empty-resources": {"app/kustomization.yaml": "resources: []\n"},
    "no-resources": {"app/kustomization.yaml": "namespace: a\n"},
    "name-prefix": {"app/kustomization.yaml": "namePrefix: p-\nresources:\n- cm.yaml\n"},
    "labels": {"app/kustomization.yaml": "commonLabels:\n  a: b\nresources:\n- cm.yaml\n"},
    "generator": {"app/kustomization.yaml": "configMapGenerator:\n- name: g\n  literals: [a=b]\n"},
    "component-kind": {
        "app/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\n"
        "kind: Component\nresources:\n- cm.yaml\n"
    },
    "namespace-over-a-deployment": {
        "app/kustomization.yaml": "namespace: a\nresources:\n- cm.yaml\n- d.yaml\n",
        "app/d.yaml": DEPLOY.format(name="d"),
    },
    "namespace-over-a-rolebinding": {
        "app/kustomization.yaml": "namespace: a\nresources:\n- rb.yaml\n",
        "app/rb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        "metadata:\n  name: rb\nsubjects:\n- kind: ServiceAccount\n  name: default\n"
        "roleRef:\n  kind: Role\n  name: r\n  apiGroup: rbac.authorization.k8s.io\n",
    },
    "a-list": {
        "app/kustomization.yaml": "resources:\n- list.yaml\n",
        "app/list.yaml": "apiVersion: v1\nkind: ConfigMapList\nitems:\n- "
        + "\n  ".join(CM.format(name="in-list").splitlines())
        + "\n",
    },
    "same-kind-and-name": {
        "app/kustomization.yaml": "resources:\n- cm.yaml\n- other.yaml\n",
        "app/other.yaml": CM.format(name="cm").replace(
            "  name: cm\n", "  name: cm\n  namespace: x\n"
        ),
    },
    "a-file-twice": {"app/kustomization.yaml": "resources:\n- cm.yaml\n- ./cm.yaml\n"},
    "anchors": {
        "app/kustomization.yaml": "resources:\n- a.yaml\n",
        "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        "data: &d\n  k: v\nextra: *d\n",
    },
    "leading-zero-number": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: Widget\nmetadata:\n  name: n\nspec:\n  mode: 0777\n",
    },
    "a-date": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: Widget\nmetadata:\n  name: n\nspec:\n"
        "  at: 2001-12-14\n",
    },
    "a-float": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: Widget\nmetadata:\n  name: n\nspec:\n  x: 1.0\n",
    },
    "int-key": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\ndata:\n  1: a\n",
    },
    "null-annotations": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\n  annotations:\n",
    },
    "internal-annotation": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\n  annotations:\n"
        "    config.kubernetes.io/index: '3'\n",
    },
    "two-kustomization-files": {
        "app/kustomization.yaml": "resources:\n- cm.yaml\n",
        "app/kustomization.yml": "resources:\n- cm.yaml\n",
    },
    "json-resource": {
        "app/kustomization.yaml": "resources:\n- cm.json\n",
        "app/cm.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}',
    },
    "no-name": {
        "app/kustomization.yaml": "resources:\n- n.yaml\n",
        "app/n.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n",
    },
    "unknown-field": {
        "app/kustomization.yaml": "resources:\n- cm.yaml\nsortOptions:\n  order: fifo\n"
    },
    "not-parsable": {
        "app/kustomization.yaml": "resources:\n- cm.yaml\n- bad.yaml\n",
        "app/bad.yaml": "apiVersion: v1\nkind: [\n",
    },
    "file-outside-its-directory": {
        "shared/cm2.yaml": CM.format(name="shared"),
        "app/kustomization.yaml": "resources:\n- cm.yaml\n- ../shared/cm2.yaml\n",
    },
    "missing-file": {"app/kustomization.yaml": "resources:\n- cm.yaml\n- gone.yaml\n"},
    "a-directory-twice": {
        "app/kustomization.yaml": "resources:\n- base\n- ./base/\n",
        "app/base/kustomization.yaml": "resources:\n- cm.yaml\n",
        "app/base/cm.yaml": CM.format(name="b"),
    },
}


def _lay_out(write: Write, files: dict[str, str]) -> None:
    for rel, text in files.items():
        write(rel, text)
    if "app/cm.yaml" not in files:
        write("app/cm.yaml", CM.format(name="cm"))


@pytest.mark.parametrize("layout", sorted(ELIGIBLE))
def test_eligible_layouts_build_as_kustomize_does(
    repo: Path, write: Write, kubectl: str, layout: str
) -> None:
    for rel, text in ELIGIBLE[layout].items():
        write(rel, text)
    native = native_objects(repo, repo / "app")
    assert native is not None, "expected the native build"
    expected = kustomize_objects(kubectl, repo / "app")
    assert expected is not None
    assert as_text(native) == as_text(expected)


@pytest.mark.parametrize("layout", sorted(INELIGIBLE))
def test_ineligible_layouts_fall_back_to_kustomize(
    repo: Path, write: Write, kubectl: str, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lay_out(write, INELIGIBLE[layout])
    assert native_objects(repo, repo / "app") is None
    scans: list[Path] = []
    real_scan = kustomize.scan

    def counted(root: Path, directory: Path) -> kustomize.KustomizeScan:
        scans.append(directory)
        return real_scan(root, directory)

    monkeypatch.setattr(kustomize, "scan", counted)
    with contextlib.suppress(SealedGitopsError):  # kustomize's error, or the scan's
        render(repo, "app", kubectl=kubectl)
    assert scans, "the kustomize path did not run"


def test_native_build_does_not_run_kustomize(
    repo: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of it: an eligible kustomization is rendered without the child process."""
    for rel, text in ELIGIBLE["nested-namespaces"].items():
        write(rel, text)

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("kustomize ran")

    monkeypatch.setattr(kustomize, "build", refuse)
    docs = render(repo, "app", kubectl="/nonexistent/kubectl")
    assert sorted(str(d.id) for d in docs) == [
        "outer_base__ConfigMap",
        "outer_deep__Secret",
        "outer_top__ConfigMap",
    ]
    # named as the kustomize path names them: the kustomization, and the place in its output
    assert [(d.file, d.via) for d in docs] == [("app", "app")] * 3
    assert [d.index for d in docs] == [0, 1, 2]
    assert [d.kind for d in docs] == [DocKind.PLAIN, DocKind.PLAIN, DocKind.PLAIN_SECRET]


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"app/kustomization.yaml": "resources:\n- ../../outside.yaml\n"}, PathError),
        ({"app/kustomization.yaml": "resources:\n- /etc/hostname\n"}, PathError),
        ({"app/kustomization.yaml": "resources:\n- link.yaml\n"}, PathError),
        ({"app/kustomization.yaml": "resources:\n- https://example.com/x.yaml\n"}, PathError),
    ],
    ids=["dotdot", "absolute", "symlink-out", "remote"],
)
def test_references_the_scan_refuses_are_refused_still(
    repo: Path, write: Write, kubectl: str, files: dict[str, str], error: type[Exception]
) -> None:
    (repo.parent / "outside.yaml").write_text(CM.format(name="out"))
    os.symlink(repo.parent / "outside.yaml", repo / "link.yaml")
    os.makedirs(repo / "app", exist_ok=True)
    os.symlink(repo.parent / "outside.yaml", repo / "app" / "link.yaml")
    _lay_out(write, files)
    assert native_objects(repo, repo / "app") is None
    with pytest.raises(error):
        render(repo, "app", kubectl=kubectl)


def test_a_symlink_inside_the_directory_is_followed_as_kustomize_does(
    repo: Path, write: Write, kubectl: str
) -> None:
    write("app/kustomization.yaml", "resources:\n- link.yaml\n")
    write("app/real.yaml", CM.format(name="real"))
    os.symlink("real.yaml", repo / "app" / "link.yaml")
    native = native_objects(repo, repo / "app")
    expected = kustomize_objects(kubectl, repo / "app")
    assert native is not None and expected is not None
    assert as_text(native) == as_text(expected)


def _sops_repo(
    repo: Path, write: Write, sops_encrypt: Callable[[Path], None], *, tail: str, name: str = "db"
) -> Path:
    secret = write(f"app/{name}.yaml", SECRET.format(name=name, value="canary-native-5d1b"))
    sops_encrypt(secret)
    write("app/kustomization.yaml", f"resources:\n- {name}.yaml\n{tail}")
    return secret


def _keys(age_key: tuple[str, Path], binding: NamespaceBinding) -> DecryptionKeys:
    ring = discover_keyring(age_identity_files=[age_key[1]], use_environment=False)
    return DecryptionKeys(sops=ring, sops_binding=binding)


def test_a_sops_secret_keeps_its_file_and_decrypts(
    repo: Path,
    write: Write,
    kubectl: str,
    sops_encrypt: Callable[[Path], None],
    age_key: tuple[str, Path],
) -> None:
    secret = _sops_repo(repo, write, sops_encrypt, tail="")
    (doc,) = render(repo, "app", kubectl="/nonexistent/kubectl")
    ((_, as_written),) = load_bytes(secret.read_bytes(), file="app/db.yaml")
    assert (doc.file, doc.index, doc.via, doc.kind) == ("app/db.yaml", 0, "app", DocKind.SOPS)
    assert not doc.transformed and list(doc.data) == list(as_written)
    result = build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.NONE))
    (obj,) = result.objects
    assert obj.data["stringData"] == {"password": "canary-native-5d1b"}
    assert (obj.file, obj.via) == ("app/db.yaml", "app")


def test_a_moved_sops_secret_is_checked_as_a_transformed_one(
    repo: Path,
    write: Write,
    sops_encrypt: Callable[[Path], None],
    age_key: tuple[str, Path],
) -> None:
    _sops_repo(repo, write, sops_encrypt, tail="namespace: apps\n")
    (doc,) = render(repo, "app", kubectl="/nonexistent/kubectl")
    assert doc.transformed and (doc.file, doc.index) == ("app/db.yaml", 0)
    assert doc.data["metadata"]["namespace"] == "apps"
    result = build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.NONE))
    (obj,) = result.objects
    assert str(obj.id) == "apps_db__Secret"
    assert obj.data["stringData"] == {"password": "canary-native-5d1b"}
    assert "sops" not in obj.data


def test_a_strict_binding_still_refuses_a_moved_sops_secret(
    repo: Path,
    write: Write,
    sops_encrypt: Callable[[Path], None],
    age_key: tuple[str, Path],
) -> None:
    _sops_repo(repo, write, sops_encrypt, tail="namespace: apps\n")
    with pytest.raises(ScopeMismatch, match="moved this SOPS-encrypted object"):
        build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.STRICT))


def test_a_plain_secret_listed_is_refused_as_before(
    repo: Path, write: Write, age_key: tuple[str, Path]
) -> None:
    write("app/kustomization.yaml", "namespace: apps\nresources:\n- s.yaml\n")
    write("app/s.yaml", SECRET.format(name="s", value="plaintext-in-git"))
    with pytest.raises(Exception, match="a plain Secret in Git is refused"):
        build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.NONE))


def test_a_borrowed_ciphertext_still_fails(
    repo: Path,
    write: Write,
    sops_encrypt: Callable[[Path], None],
    age_key: tuple[str, Path],
) -> None:
    """A committed file whose ciphertext was swapped for another file's: its MAC fails on the
    native path as on the kustomize path (the committed bytes are what is verified)."""
    one = _sops_repo(repo, write, sops_encrypt, tail="namespace: apps\n", name="one")
    two = write("other/two.yaml", SECRET.format(name="two", value="other-value"))
    sops_encrypt(two)
    ((_, first),) = load_bytes(one.read_bytes(), file="one")
    ((_, second),) = load_bytes(two.read_bytes(), file="two")
    text = one.read_text().replace(
        first["stringData"]["password"], second["stringData"]["password"]
    )
    one.write_text(text)
    with pytest.raises(IntegrityError):
        build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.NONE))


def test_each_file_is_parsed_once_and_no_output_is_parsed(
    repo: Path,
    write: Write,
    sops_encrypt: Callable[[Path], None],
    age_key: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transformed layout without kustomize: the kustomization and each SOPS file parsed
    once (the kustomize path parses its output too: tests/render/test_committed.py)."""
    for n in range(3):
        sops_encrypt(write(f"app/s{n}.yaml", SECRET.format(name=f"s{n}", value=f"pw-{n}")))
    write("app/kustomization.yaml", "namespace: moved\nresources: [s0.yaml, s1.yaml, s2.yaml]\n")
    parses: list[int] = []
    original = sops_yaml.make_loader

    def counting(text: str) -> Any:
        parses.append(len(text))
        return original(text)

    monkeypatch.setattr(sops_yaml, "make_loader", counting)
    monkeypatch.setattr(loader, "make_loader", counting)
    result = build(root=repo, path="app", keys=_keys(age_key, NamespaceBinding.NONE))
    assert sorted(str(obj.id) for obj in result.objects) == [
        "moved_s0__Secret",
        "moved_s1__Secret",
        "moved_s2__Secret",
    ]
    assert sorted(obj.data["stringData"]["password"] for obj in result.objects) == [
        "pw-0",
        "pw-1",
        "pw-2",
    ]
    assert len(parses) == 1 + 3


def test_a_kustomization_file_linked_out_of_the_root_is_not_read(repo: Path) -> None:
    """Neither path reads a kustomization file whose symlink leaves the root (the scan read
    it, and named what it found there in its error)."""
    outside = repo.parent / "outside.yaml"
    outside.write_text("resources:\n- /etc/hostname\nnote: outside-value-42\n")
    (repo / "app").mkdir()
    os.symlink(outside, repo / "app" / "kustomization.yaml")
    assert native_objects(repo, repo / "app") is None
    with pytest.raises(PathError, match="kustomization leaves the repository root"):
        render(repo, "app", kubectl="/nonexistent/kubectl")
