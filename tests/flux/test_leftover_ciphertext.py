"""Issue 12: any object that still carries SOPS metadata or ``ENC[...]`` values after the decryption
stage is a failure naming its file, never applied (and never printed by ``build``).

The files are made by the real sops. The way in that the issue found: a ``configMapGenerator``
over an encrypted YAML (or dotenv) file, which kustomize copies into a ConfigMap whose data holds
the ciphertext and the ``sops_mac``: before the guard, ``build`` printed it and exited 0.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render.leftover import refuse_leftover_ciphertext
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import SECRET, cli_build, keys_for, sops_encrypt, write

CANARY = "canary-leftover-51d0"
PLAIN_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  k: v\n"


@pytest.fixture
def age(age_keys: list[AgeKey]) -> AgeKey:
    return age_keys[0]


def _generated_from_encrypted(root: Path, sops: str, age: AgeKey, source: str) -> None:
    if source == "yaml":
        enc = write(root, "app/settings.yaml", SECRET.format(name="s", value=CANARY))
        sops_encrypt(sops, enc, age=age)
        generator = "configMapGenerator:\n- name: settings\n  files:\n  - settings.yaml\n"
    else:
        enc = write(root, "app/settings.env", f"PASSWORD={CANARY}\nUSER=admin\n")
        sops_encrypt(sops, enc, age=age, regex=None, input_type="dotenv")
        generator = "configMapGenerator:\n- name: settings\n  envs:\n  - settings.env\n"
    assert "sops" in enc.read_text() and CANARY not in enc.read_text()
    write(root, "app/plain.yaml", PLAIN_CM)
    write(root, "app/kustomization.yaml", "resources:\n- plain.yaml\n" + generator)


@pytest.mark.parametrize("source", ["yaml", "dotenv"])
def test_a_configmap_generated_from_an_encrypted_file_fails_naming_it(
    tmp_path: Path, sops_binary: str, age: AgeKey, source: str
) -> None:
    _generated_from_encrypted(tmp_path, sops_binary, age, source)

    done = cli_build(tmp_path, "app", age)

    assert done.returncode == 1, done.stdout
    # named by the generator stage (the source file) or by the leftover guard (the object)
    assert "app/settings." in done.stderr or "ConfigMap settings" in done.stderr, done.stderr
    assert "ENC[" not in done.stdout and "sops_mac" not in done.stdout
    assert "name: settings" not in done.stdout
    assert CANARY not in done.stdout + done.stderr

    with pytest.raises(SealedGitopsError):
        build(root=tmp_path, path="app", keys=keys_for(age))


def test_a_configmap_whose_literal_is_a_copied_ciphertext_fails_naming_it(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """No generator stage can tell this one: only the guard after decryption does."""
    enc = write(tmp_path / "src", "x.yaml", SECRET.format(name="s", value=CANARY))
    sops_encrypt(sops_binary, enc, age=age)
    copied = next(
        line.split(": ", 1)[1] for line in enc.read_text().splitlines() if "password:" in line
    )
    write(tmp_path, "app/plain.yaml", PLAIN_CM)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- plain.yaml\n"
        f"configMapGenerator:\n- name: settings\n  literals:\n  - password={copied}\n",
    )

    done = cli_build(tmp_path, "app", age)
    assert done.returncode == 1, done.stdout
    assert "ConfigMap settings" in done.stderr and "still holds SOPS ciphertext" in done.stderr
    assert "data.password" in done.stderr
    assert done.stdout == ""  # atomic: nothing of the revision is printed

    with pytest.raises(SealedGitopsError, match="still holds SOPS ciphertext"):
        build(root=tmp_path, path="app", keys=keys_for(age))
    isolated = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert [o.id.name for o in isolated.objects] == ["plain"]
    assert [(f.object or "").rsplit("-", 1)[0] for f in isolated.failures] == ["ConfigMap settings"]
    assert isolated.failures[0].file == "app"  # the kustomization that made it


def test_a_plain_secret_holding_an_encrypted_file_in_base64_fails(
    tmp_path: Path, sops_binary: str, age: AgeKey
) -> None:
    """Even with plain Secrets allowed, base64 of SOPS ciphertext is not a value (here a part
    of a SOPS file, no metadata: nothing can open it)."""
    enc = write(tmp_path / "src", "x.yaml", SECRET.format(name="s", value=CANARY))
    sops_encrypt(sops_binary, enc, age=age)
    part = enc.read_text().split("sops:")[0]
    blob = base64.b64encode(part.encode()).decode()
    write(
        tmp_path,
        "deploy/s.yaml",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: wrapped\ndata:\n  config.yaml: {blob}\n",
    )
    write(tmp_path, "deploy/plain.yaml", PLAIN_CM)
    result = build(
        root=tmp_path,
        path="deploy",
        keys=keys_for(age),
        allow_plain_secrets=True,
        policy=FailurePolicy.ISOLATE,
    )
    assert [o.id.name for o in result.objects] == ["plain"]
    assert [(f.file, f.index) for f in result.failures] == [("deploy/s.yaml", 0)]
    assert "data.config.yaml" in result.failures[0].reason


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        (
            {"kind": "ConfigMap", "data": {"a": "x ENC[AES256_GCM,data:AA==,iv:,tag:,type:str] y"}},
            "data.a",
        ),
        (
            {"kind": "ConfigMap", "metadata": {"annotations": {"n": "ENC[AES256_GCM,data:x]"}}},
            "metadata.annotations.n",
        ),
        (
            {"kind": "X", "spec": {"list": [{"deep": ["ENC[AES256_GCM,data:x]"]}]}},
            "spec.list[0].deep[0]",
        ),
        ({"kind": "ConfigMap", "sops": {"mac": "x"}}, "sops (SOPS metadata)"),
        ({"kind": "ConfigMap", "data": {"sops_mac": "x"}}, "data.sops_mac"),
        ({"kind": "ConfigMap", "data": {"sops_age__list_0__map_enc": "x"}}, "data.sops_age"),
        (
            {
                "kind": "ConfigMap",
                "binaryData": {"b": base64.b64encode(b"ENC[AES256_GCM,").decode()},
            },
            "binaryData.b",
        ),
    ],
)
def test_the_guard_finds_leftovers_anywhere(obj: dict[str, object], where: str) -> None:
    with pytest.raises(SealedGitopsError) as info:
        refuse_leftover_ciphertext(obj)
    assert where in str(info.value)


@pytest.mark.parametrize(
    "obj",
    [
        {"kind": "ConfigMap", "data": {"note": "sops is a tool", "ENC": "not a ciphertext"}},
        {"kind": "ConfigMap", "metadata": {"labels": {"sops": "yes"}}, "data": {"sops": "x"}},
        {"kind": "Secret", "data": {"k": base64.b64encode(b"a normal value").decode()}},
        {"kind": "Secret", "data": {"k": "not base64 !"}},
    ],
)
def test_the_guard_leaves_ordinary_objects_alone(obj: dict[str, object]) -> None:
    refuse_leftover_ciphertext(obj)
