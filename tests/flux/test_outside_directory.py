"""Issue 12, Must 7: files a kustomization reads from outside its own directory, inside the root.

Flux builds with no load restriction inside its copy of the repository, so its decryptor test
"decrypt env sources" (``envs: [app.env, ../secret.env]`` from ``subdir``) and "follows relative
symlink within root" (``subdir/symlink -> ../otherdir/data.env``) build there, and so does a
``resources: [../shared/app.yaml]``. kustomize's ``LoadRestrictionsRootOnly`` refuses each of
them (``security; file ... is not in or below ...``). Here they build as in Flux, while what
leaves the repository root stays refused
(test_layouts.py::test_a_source_outside_the_root_is_refused), and the load restriction itself
stays: a file kustomize reads through a field the scan does not know (a generator's own config)
is still held to its kustomization's directory.
Files are encrypted by the real sops.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.pipeline import build
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import keys_for, sops_encrypt, write

CANARY = "outside-dir-canary-5c1e"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: {}\n"


def values(obj: dict[str, Any]) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update(obj.get("stringData") or {})
    return out


def by_name(root: Path, path: str, age: AgeKey) -> dict[str, dict[str, Any]]:
    result = build(root=root, path=path, keys=keys_for(age))
    return {o.id.name: o.data for o in result.objects}


def test_flux_decrypt_env_sources_with_a_parent_reference(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """Flux's "decrypt env sources": files and envs of ``subdir``, one of them ``../secret.env``,
    and a binary ``combination.json`` under its key name ``combo``."""
    age = age_keys[0]
    write(tmp_path, "subdir/app.env", "var1=value1\n")
    write(tmp_path, "subdir/combination.json", f"The safe combination is {CANARY}")
    write(tmp_path, "subdir/file.txt", "file")
    write(tmp_path, "secret.env", "var2=value2\n")
    for rel in ("subdir/app.env", "subdir/file.txt", "secret.env"):
        sops_encrypt(sops_binary, tmp_path / rel, age=age, regex=None)
    sops_encrypt(sops_binary, tmp_path / "subdir/combination.json", age=age, regex=None,
                 input_type="binary")  # fmt: skip
    write(
        tmp_path,
        "subdir/kustomization.yaml",
        "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n- name: envsecret\n"
        "  files:\n  - file.txt\n  - combo=combination.json\n  envs:\n  - app.env\n"
        "  - ../secret.env\n",
    )

    objects = by_name(tmp_path, "subdir", age)

    assert values(objects["envsecret"]) == {
        "file.txt": "file",
        "combo": f"The safe combination is {CANARY}",
        "var1": "value1",
        "var2": "value2",
    }


def test_flux_follows_a_relative_symlink_within_the_root(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    age = age_keys[0]
    write(tmp_path, "otherdir/data.env", f"key={CANARY}\n")
    sops_encrypt(sops_binary, tmp_path / "otherdir/data.env", age=age, regex=None)
    (tmp_path / "subdir").mkdir()
    (tmp_path / "subdir/symlink").symlink_to("../otherdir/data.env")
    write(
        tmp_path,
        "subdir/kustomization.yaml",
        "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n- name: envsecret\n"
        "  envs:\n  - symlink\n  files:\n  - symlink\n",
    )

    objects = by_name(tmp_path, "subdir", age)

    # a files: entry through a symlink keeps the name as written as its key, as kustomize does
    assert set(values(objects["envsecret"])) == {"key", "symlink"}
    assert values(objects["envsecret"])["key"] == CANARY


def test_a_plain_resource_and_a_sops_resource_from_a_sibling_directory(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """``resources: [../shared/...]`` (files, not kustomizations): Flux builds it; the SOPS one
    is matched back to its file and its MAC verified as everywhere else."""
    age = age_keys[0]
    write(tmp_path, "shared/settings.yaml", CONFIGMAP.format("b"))
    write(
        tmp_path,
        "shared/secret.yaml",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  pw: {CANARY}\n",
    )
    sops_encrypt(sops_binary, tmp_path / "shared/secret.yaml", age=age)
    write(
        tmp_path,
        "apps/kustomization.yaml",
        "namespace: apps\nresources:\n- ../shared/settings.yaml\n- ../shared/secret.yaml\n",
    )

    objects = by_name(tmp_path, "apps", age)

    assert objects["settings"]["metadata"]["namespace"] == "apps"
    assert values(objects["db"]) == {"pw": CANARY}


def test_a_patch_from_a_parent_directory(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    age = age_keys[0]
    write(tmp_path, "app/configmap.yaml", CONFIGMAP.format("b"))
    write(tmp_path, "patches/settings.yaml", CONFIGMAP.format("patched"))
    write(tmp_path, "app/kustomization.yaml",
          "resources:\n- configmap.yaml\npatches:\n- path: ../patches/settings.yaml\n")  # fmt: skip

    objects = by_name(tmp_path, "app", age)

    assert objects["settings"]["data"] == {"a": "patched"}


def test_the_load_restriction_still_holds_for_what_the_scan_does_not_read(
    tmp_path: Path, age_keys: list[AgeKey]
) -> None:
    """A generator config (``generators: [gen.yaml]``) names its own files; the scan does not
    parse it, so kustomize's own restriction must still refuse a path that leaves the
    kustomization's directory (here: a file of the repository, and one outside it)."""
    outside = tmp_path / "outside.env"
    outside.write_text(f"stolen={CANARY}\n", encoding="utf-8")
    root = tmp_path / "repo"
    write(root, "other/inside.env", f"stolen={CANARY}\n")
    for source in ("../other/inside.env", str(outside)):
        write(
            root,
            "app/gen.yaml",
            "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: stolen\n"
            f"envs:\n- {source}\n",
        )
        write(root, "app/kustomization.yaml", "generators:\n- gen.yaml\n")
        with pytest.raises(SealedGitopsError) as exc:
            build(root=root, path="app", keys=keys_for(age_keys[0]))
        assert CANARY not in str(exc.value)
        assert "security" in str(exc.value) or "leaves the repository root" in str(exc.value)
    # the same generator config over a file of its own directory builds: what refused the
    # others was the restriction, not the config
    write(root, "app/own.env", "mine=ok\n")
    write(root, "app/gen.yaml", "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n"
          "  name: own\nenvs:\n- own.env\n")  # fmt: skip
    [obj] = build(root=root, path="app", keys=keys_for(age_keys[0])).objects
    assert obj.data["data"] == {"mine": "ok"}


def test_no_plaintext_of_a_moved_source_is_left_behind(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """The moved copy lives in the build's memory-backed staging directory and goes with it."""
    age = age_keys[0]
    root = tmp_path / "repo"
    write(root, "secret.env", f"token={CANARY}\n")
    sops_encrypt(sops_binary, root / "secret.env", age=age, regex=None)
    write(
        root, "app/kustomization.yaml", "secretGenerator:\n- name: s\n  envs:\n  - ../secret.env\n"
    )
    before = set(os.listdir("/dev/shm"))

    [obj] = build(root=root, path="app", keys=keys_for(age)).objects

    assert values(obj.data) == {"token": CANARY}
    assert set(os.listdir("/dev/shm")) <= before
    for path in root.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
