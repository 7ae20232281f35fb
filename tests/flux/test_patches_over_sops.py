"""Issue 12, Must 2: encrypted patches over a SOPS resource (Flux's testdata/sops/patches).

Flux's layout: ``secret.yaml`` (a SOPS Secret, ``stringData.key: value`` encrypted) and two
SOPS-encrypted patches, ``merge1.yaml`` (``stringData.key: merge1``) and ``merge2.yaml``
(``stringData.merge2: merge2``); Flux's test expects ``key=merge1`` and ``merge2=merge2``. The
patches' plaintext replaces values the resource's MAC covers, so the transformer check accepts a
plaintext value at a key path only when a MAC-verified encrypted patch of the build provides that
very value for that very object and key path (render/transformed.py). Everything else still
fails, naming the resource's file. Files are made by the real sops.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.errors import ScopeMismatch, SealedGitopsError
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render.binding import NamespaceBinding
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import keys_for, sops_encrypt, write


def secret(name: str, **values: str) -> str:
    lines = "".join(f"  {k}: {v}\n" for k, v in values.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n{lines}"


def values(obj: dict[str, Any]) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update(obj.get("stringData") or {})
    return out


def flux_patches(root: Path, sops: str, age: AgeKey, *, kustomization: str | None = None) -> None:
    """Flux's testdata/sops/patches, encrypted by the real sops with Flux's regex."""
    for name, text in (
        ("secret.yaml", secret("secret", key="value")),
        ("merge1.yaml", secret("secret", key="merge1")),
        ("merge2.yaml", secret("secret", merge2="merge2")),
    ):
        sops_encrypt(sops, write(root, f"patches/{name}", text), age=age)
    write(
        root,
        "patches/kustomization.yaml",
        kustomization
        or "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namePrefix: patches-\nresources:\n  - secret.yaml\npatches:\n  - path: merge1.yaml\n"
        "  - path: merge2.yaml\n",
    )


def test_flux_patches_layout_builds_as_flux_expects(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    flux_patches(tmp_path, sops_binary, age_keys[0])
    write(tmp_path, "kustomization.yaml", "namePrefix: sops-\nresources:\n  - patches\n")

    result = build(root=tmp_path, path=".", keys=keys_for(age_keys[0]))

    [obj] = result.objects
    assert obj.id.name == "sops-patches-secret"
    assert values(obj.data) == {"key": "merge1", "merge2": "merge2"}
    assert "sops" not in obj.data


def with_a_move(source: str, target: str) -> str:
    """The patches layout's kustomization plus a plain JSON 6902 ``move`` on its Secret."""
    return (
        "namePrefix: patches-\nresources:\n  - secret.yaml\npatches:\n"
        "  - path: merge2.yaml\n  - target:\n      kind: Secret\n      name: secret\n"
        f"    patch: |-\n      - op: move\n        from: {source}\n"
        f"        path: {target}\n"
    )


def refused(root: Path, age: AgeKey, path: str = "patches") -> SealedGitopsError:
    with pytest.raises(SealedGitopsError) as exc:
        build(root=root, path=path, keys=keys_for(age))
    isolated = build(root=root, path=path, keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert isolated.objects == [] or all(o.id.name != "patches-secret" for o in isolated.objects)
    assert isolated.failures
    return exc.value


def test_a_plain_patch_replacing_an_encrypted_value_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    flux_patches(tmp_path, sops_binary, age_keys[0])
    write(tmp_path, "patches/plain.yaml", secret("secret", key="merge1"))
    kfile = tmp_path / "patches/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("merge1.yaml", "plain.yaml"))

    error = refused(tmp_path, age_keys[0])
    assert error.file == "patches/secret.yaml"
    assert "stringData.key" in str(error)


def test_a_plain_patch_after_the_encrypted_one_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """The same value the encrypted patch sets is fine; a plain patch overriding it is not."""
    flux_patches(tmp_path, sops_binary, age_keys[0])
    write(tmp_path, "patches/plain.yaml", secret("secret", key="chosen-by-the-committer"))
    kfile = tmp_path / "patches/kustomization.yaml"
    kfile.write_text(kfile.read_text() + "  - path: plain.yaml\n")

    assert refused(tmp_path, age_keys[0]).file == "patches/secret.yaml"


def test_a_value_moved_to_another_key_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """A JSON 6902 ``move`` puts the resource's ciphertext under another key."""
    flux_patches(
        tmp_path,
        sops_binary,
        age_keys[0],
        kustomization=with_a_move("/stringData/key", "/stringData/moved"),
    )
    error = refused(tmp_path, age_keys[0])
    assert error.file == "patches/secret.yaml"
    assert "moved" in str(error)


def test_an_encrypted_patch_moved_by_a_plain_patch_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """The patch's own value may sit only at the key path it was encrypted under."""
    flux_patches(
        tmp_path,
        sops_binary,
        age_keys[0],
        kustomization=with_a_move("/stringData/merge2", "/stringData/key"),
    )
    assert refused(tmp_path, age_keys[0]).file == "patches/secret.yaml"


def test_a_tampered_encrypted_patch_is_refused_naming_it(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    flux_patches(tmp_path, sops_binary, age_keys[0])
    merge1 = tmp_path / "patches/merge1.yaml"
    merge1.write_text(merge1.read_text().replace("name: secret", "name: secret2"))

    assert refused(tmp_path, age_keys[0]).file == "patches/merge1.yaml"


def test_an_encrypted_patch_for_another_object_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """A key holder's patch for ``other``, pointed at ``secret`` by a kustomization target."""
    flux_patches(tmp_path, sops_binary, age_keys[0])
    sops_encrypt(
        sops_binary,
        write(tmp_path, "patches/other.yaml", secret("other", key="for-other")),
        age=age_keys[0],
    )
    write(
        tmp_path,
        "patches/kustomization.yaml",
        "namePrefix: patches-\nresources:\n  - secret.yaml\npatches:\n  - path: other.yaml\n"
        "    target:\n      kind: Secret\n      name: secret\n",
    )
    assert refused(tmp_path, age_keys[0]).file == "patches/secret.yaml"


def test_an_encrypted_patch_with_a_plaintext_value_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """A patch whose value was left in plaintext by its own rules provides nothing: only a value
    that was encrypted in a MAC-verified patch may replace an encrypted one."""
    flux_patches(tmp_path, sops_binary, age_keys[0])
    merge1 = write(tmp_path, "patches/merge1.yaml", secret("secret", key="merge1"))
    sops_encrypt(sops_binary, merge1, age=age_keys[0], regex="^metadata$")

    assert refused(tmp_path, age_keys[0]).file == "patches/secret.yaml"


# -- isolate: the rebuild without a broken file decrypts generator sources and patches too ------

BROKEN_YAML = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n"


def test_isolate_rebuild_decrypts_generator_sources(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """A secretGenerator over an encrypted env file beside a file that does not parse: the
    rebuild without the broken file still generates the Secret from the plaintext."""
    env = write(tmp_path, "app/secret.env", "token=generated-value\n")
    sops_encrypt(sops_binary, env, age=age_keys[0], regex=None, input_type="dotenv")
    write(tmp_path, "app/broken.yaml", BROKEN_YAML)
    write(tmp_path, "app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\n- broken.yaml\ngeneratorOptions:\n"
        "  disableNameSuffixHash: true\nsecretGenerator:\n- name: app\n  envs:\n  - secret.env\n",
    )

    result = build(
        root=tmp_path, path="app", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE
    )

    assert [f.file for f in result.failures] == ["app/broken.yaml"]
    by_name = {o.id.name: o for o in result.objects}
    assert sorted(by_name) == ["app", "ok"]
    assert values(by_name["app"].data) == {"token": "generated-value"}


def test_isolate_rebuild_keeps_the_flux_patches_layout(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    flux_patches(tmp_path, sops_binary, age_keys[0])
    write(tmp_path, "patches/broken.yaml", BROKEN_YAML)
    kfile = tmp_path / "patches/kustomization.yaml"
    kfile.write_text(
        kfile.read_text().replace("  - secret.yaml\n", "  - secret.yaml\n  - broken.yaml\n")
    )

    result = build(
        root=tmp_path, path="patches", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE
    )

    assert [f.file for f in result.failures] == ["patches/broken.yaml"]
    [obj] = result.objects
    assert values(obj.data) == {"key": "merge1", "merge2": "merge2"}


def test_a_strict_namespace_binding_still_refuses_the_encrypted_patches(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """A patch cannot name its namespace under its MAC: under Strict it is not decrypted."""
    flux_patches(tmp_path, sops_binary, age_keys[0])
    keys = dataclasses.replace(keys_for(age_keys[0]), sops_binding=NamespaceBinding.STRICT)

    with pytest.raises(ScopeMismatch) as exc:
        build(root=tmp_path, path="patches", keys=keys)
    assert exc.value.file == "patches/merge1.yaml"


LITERAL_BASE = (
    "namePrefix: patches-\npatches:\n  - path: merge1.yaml\n  - path: merge2.yaml\n"
    "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n  - name: secret\n"
    "    literals:\n{literals}"
)


def literal_base(literals: str, *, patches: str = "") -> str:
    """Flux's own patches kustomization: a secretGenerator literal base, the encrypted patches
    over it (and ``patches``: more patch entries, plain ones)."""
    text = LITERAL_BASE.format(literals=literals)
    last = "  - path: merge2.yaml\n"
    return text.replace(last, last + patches, 1)


def test_flux_literal_base_is_accepted_once_encrypted_patches_replace_every_value(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """Flux's patches/kustomization.yaml as it is: ``literals: [key=value]`` replaced by
    ``merge1.yaml``; the literal never reaches the object (the shadowed ``data`` key is dropped,
    as the API server would drop it under ``stringData``)."""
    flux_patches(
        tmp_path, sops_binary, age_keys[0], kustomization=literal_base("      - key=value\n")
    )

    [obj] = build(root=tmp_path, path="patches", keys=keys_for(age_keys[0])).objects

    assert obj.id.name == "patches-secret"
    assert values(obj.data) == {"key": "merge1", "merge2": "merge2"}
    assert "key" not in (obj.data.get("data") or {})


def test_a_literal_no_encrypted_patch_replaces_is_a_plain_secret_in_git(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    literals = "      - key=value\n      - token=committed-in-plaintext\n"
    flux_patches(tmp_path, sops_binary, age_keys[0], kustomization=literal_base(literals))

    error = refused(tmp_path, age_keys[0])

    assert "plain Secret in Git" in str(error)
    assert "committed-in-plaintext" not in str(error)


def test_a_key_an_encrypted_patch_sets_on_another_secret_does_not_cover_a_literal(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """``merge1.yaml`` sets ``key`` on Secret ``secret``; Secret ``other`` has its own literal
    ``key``: a key name set somewhere by an encrypted patch is not enough, the value must be
    the one the patch sets. ``other`` is refused, ``secret`` is applied."""
    kustomization = literal_base("      - key=value\n").replace(
        "  - name: secret\n",
        "  - name: other\n    literals:\n      - key=committed-in-plaintext\n  - name: secret\n",
        1,
    )
    flux_patches(tmp_path, sops_binary, age_keys[0], kustomization=kustomization)

    result = build(
        root=tmp_path, path="patches", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE
    )

    assert [f.object for f in result.failures] == ["Secret patches-other"]
    assert "plain Secret in Git" in str(result.failures[0].error)
    [obj] = result.objects
    assert values(obj.data) == {"key": "merge1", "merge2": "merge2"}


def test_a_plain_patch_over_the_generated_secret_is_a_plain_secret(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """An inline patch after the encrypted ones puts its own plaintext in ``stringData``."""
    plain = (
        "  - patch: |-\n      apiVersion: v1\n      kind: Secret\n      metadata:\n"
        "        name: secret\n      stringData:\n        key: committed-in-plaintext\n"
    )
    kustomization = literal_base("      - key=value\n", patches=plain)
    flux_patches(tmp_path, sops_binary, age_keys[0], kustomization=kustomization)

    error = refused(tmp_path, age_keys[0])

    assert "plain Secret in Git" in str(error)
