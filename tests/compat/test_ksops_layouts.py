"""KSOPS' published layouts, built by ``sealed_gitops.pipeline.build``, give the Secrets it wants.

Why: Argo CD users keep their secrets as KSOPS layouts (a ``kind: ksops`` generator that runs the
``ksops`` binary as a kustomize exec plugin). We never run an exec plugin from Git, so the layout as
published must fail with kustomize's own reason, not half-render. Moved to the Flux form (the
same encrypted files named under ``resources``, ``patches`` or ``secretGenerator``, nothing
re-encrypted), each layout must build to KSOPS' ``want.yaml``: same names, metadata, type, values.

Known differences, each asserted below so a change shows: ``hash`` (KSOPS's
``kustomize.config.k8s.io/needs-hash`` annotation is honoured by kustomize only on generator output,
so a resource keeps its name and the annotation) and ``behaviors`` (the base is a plain Secret in
Git, refused unless plain Secrets are allowed; the patch leaves its ``behavior`` annotation).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import IntegrityError, SealedGitopsError
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.pipeline import build
from sealed_gitops.render.decrypt import DecryptionKeys
from tests.compat.vectors import DATA, Opened, opened_with, run_cli

LAYOUTS = DATA / "kustomize-sops" / "test" / "krm"

_NO_SUFFIX = "generatorOptions:\n  disableNameSuffixHash: true\n"
_FILES = "secretGenerator:\n  - name: mysecret\n    type: Opaque\n    files:\n      - {}\n"
_ENVS = "secretGenerator:\n  - name: mysecret\n{}    envs:\n      - secret.enc.env\n"

#: KSOPS layout -> the kustomization.yaml a Flux user writes for the same files
FLUX_FORM: dict[str, str] = {
    "single": "resources:\n  - secret.enc.yaml\n",
    "multiple": "resources:\n  - secret-A.enc.yaml\n  - secret-B.enc.yaml\n  - secret-C.enc.yaml\n",
    "hash": "resources:\n  - secret.enc.yaml\n",
    "behaviors": "resources:\n  - ./base\npatches:\n  - path: secret.enc.yaml\n",
    "file": _NO_SUFFIX + _FILES.format("secret.enc.yaml"),
    "binaryfile": _NO_SUFFIX + _FILES.format("secret.enc.yaml"),
    "override": _NO_SUFFIX + _FILES.format("secret.yaml=secret.enc.yaml"),
    "envs": _NO_SUFFIX + _ENVS.format(""),
    "metadata": _NO_SUFFIX
    + "  labels:\n    foo: bar\n  annotations:\n    abc: xyz\n"
    + _ENVS.format("    namespace: test\n"),
}

#: the layouts whose Flux form gives want.yaml exactly
EXACT = ["single", "multiple", "file", "binaryfile", "envs", "override", "metadata"]


@pytest.fixture
def keys() -> Iterator[Opened]:
    with opened_with("ksops-pgp") as made:
        yield made


@pytest.fixture
def ring(keys: Opened) -> Iterator[KeyRing]:
    made = keys.keyring()
    yield made
    made.close()


def checkout(tmp_path: Path, layout: str, *, flux_form: bool) -> Path:
    """The layout in a scratch repository root, as published or moved to the Flux form."""
    root = tmp_path / "repo"
    shutil.copytree(LAYOUTS / layout, root / layout)
    (root / ".git").mkdir()
    if flux_form:
        (root / layout / "generate-resources.yaml").unlink()
        (root / layout / "kustomization.yaml").write_text(FLUX_FORM[layout])
    return root


def want(layout: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((LAYOUTS / layout / "want.yaml").read_text()) if d]


def values(obj: dict[str, Any]) -> dict[str, bytes]:
    """What the Secret holds once the API server merged ``stringData`` into ``data``."""
    out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    return out


def assert_same_secret(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert ours["kind"] == theirs["kind"] == "Secret"
    assert ours["metadata"] == theirs["metadata"]
    assert ours.get("type", "Opaque") == theirs.get("type", "Opaque")
    assert values(ours) == values(theirs)


def built(root: Path, layout: str, ring: KeyRing, **kwargs: Any) -> list[dict[str, Any]]:
    result = build(root=root, path=layout, keys=DecryptionKeys(sops=ring), **kwargs)
    return [obj.data for obj in result.objects]


@pytest.mark.parametrize("layout", sorted(FLUX_FORM))
def test_published_layout_is_refused_without_running_ksops(
    tmp_path: Path, ring: KeyRing, layout: str
) -> None:
    root = checkout(tmp_path, layout, flux_form=False)
    with pytest.raises(SealedGitopsError) as caught:
        build(root=root, path=layout, keys=DecryptionKeys(sops=ring))
    assert "unable to load external plugin 'ksops'" in str(caught.value)
    assert "list them under resources, or a secretGenerator" in str(caught.value)


@pytest.mark.parametrize("layout", EXACT)
def test_flux_form_builds_what_ksops_wants(tmp_path: Path, ring: KeyRing, layout: str) -> None:
    root = checkout(tmp_path, layout, flux_form=True)
    ours = sorted(built(root, layout, ring), key=lambda o: str(o["metadata"]["name"]))
    theirs = sorted(want(layout), key=lambda o: str(o["metadata"]["name"]))
    assert len(ours) == len(theirs)
    for mine, wanted in zip(ours, theirs, strict=True):
        assert_same_secret(mine, wanted)


@pytest.mark.parametrize("layout", EXACT)
def test_cli_build_prints_the_same_secrets(tmp_path: Path, keys: Opened, layout: str) -> None:
    root = checkout(tmp_path, layout, flux_form=True)
    done = run_cli(["build", str(root / layout), *keys.cli_args(), "--show-secrets"], home=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    printed = [d for d in yaml.safe_load_all(done.stdout) if d]
    by_name = {str(d["metadata"]["name"]): d for d in printed}
    wanted = want(layout)
    assert sorted(by_name) == sorted(str(w["metadata"]["name"]) for w in wanted)
    for theirs in wanted:
        assert_same_secret(by_name[str(theirs["metadata"]["name"])], theirs)


def test_hash_layout_keeps_the_resource_name(tmp_path: Path, ring: KeyRing) -> None:
    """KSOPS wants ``mysecret-hash-h55dbmfg7b``: kustomize adds that suffix only to generator
    output. As a resource the Secret keeps its name and the annotation; the values are KSOPS'."""
    root = checkout(tmp_path, "hash", flux_form=True)
    [ours] = built(root, "hash", ring)
    [theirs] = want("hash")
    assert theirs["metadata"]["name"] == "mysecret-hash-h55dbmfg7b"
    assert ours["metadata"]["name"] == "mysecret-hash"
    assert ours["metadata"]["annotations"] == {"kustomize.config.k8s.io/needs-hash": "true"}
    assert values(ours) == values(theirs)


def test_behaviors_layout_base_is_a_plain_secret(tmp_path: Path, ring: KeyRing) -> None:
    root = checkout(tmp_path, "behaviors", flux_form=True)
    with pytest.raises(SealedGitopsError) as caught:
        built(root, "behaviors", ring)
    assert "plain Secret" in str(caught.value)
    # Allowed explicitly, the encrypted patch replaces every value of the plain base.
    [ours] = built(root, "behaviors", ring, allow_plain_secrets=True)
    [theirs] = want("behaviors")
    annotations = ours["metadata"].pop("annotations")
    assert annotations == {"kustomize.config.k8s.io/behavior": "replace"}
    assert_same_secret(ours, theirs)


def test_transformers_over_a_published_secret(tmp_path: Path, ring: KeyRing) -> None:
    """Flux's commonest layout over KSOPS' file: namespace and labels change fields the MAC
    covers (its unencrypted_regex leaves metadata in the clear), and it still decrypts."""
    root = checkout(tmp_path, "single", flux_form=True)
    (root / "single" / "kustomization.yaml").write_text(
        FLUX_FORM["single"] + "namespace: apps\nlabels:\n  - pairs:\n      team: a\n"
    )
    [ours] = built(root, "single", ring)
    [theirs] = want("single")
    assert ours["metadata"] == {"name": "mysecret", "namespace": "apps", "labels": {"team": "a"}}
    assert values(ours) == values(theirs)


def test_a_published_value_moved_to_another_key_fails(tmp_path: Path, ring: KeyRing) -> None:
    root = checkout(tmp_path, "single", flux_form=True)
    path = root / "single" / "secret.enc.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["data"]["password"], doc["data"]["username"] = (
        doc["data"]["username"],
        doc["data"]["password"],
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # The key path is the value's AAD: the swapped ciphertext no longer authenticates.
    with pytest.raises(IntegrityError) as caught:
        built(root, "single", ring)
    assert "single/secret.enc.yaml" in str(caught.value)
    assert "does not authenticate" in str(caught.value)
