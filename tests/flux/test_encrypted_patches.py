"""Issue 12, Must 2: patches that are themselves SOPS-encrypted, as Flux supports them.

Before: ``cannot read: Is a directory`` (kustomize merged the patch's ``sops`` block into the
target, and the decryption stage looked for the "file" the kustomization directory is). Now each
encrypted ``patches:`` / ``patchesStrategicMerge:`` file is decrypted (MAC verified) before
kustomize runs, in the memory-backed copy of the build, and kustomize applies the plaintext.
Files are made by the real sops.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render.decrypt import DecryptionKeys
from tests.conftest_tools import AgeKey

CANARY = f"canary-patch-{secrets.token_hex(8)}"
FLUX_REGEX = "^(data|stringData)$"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def encrypt(binary: str, path: Path, age: AgeKey, *, regex: str | None = FLUX_REGEX) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SOPS_DISABLE_VERSION_CHECK": "true"}
    args = [binary, "encrypt", "--age", age.public]
    if regex:
        args += ["--encrypted-regex", regex]
    subprocess.run(
        [*args, "--in-place", str(path)], check=True, capture_output=True, env=env, timeout=60
    )


def keys_for(age: AgeKey) -> DecryptionKeys:
    ring = discover_keyring(age_identity_files=[age.file], use_environment=False)
    return DecryptionKeys(sops=ring)


def secret(name: str, **values: str) -> str:
    lines = "".join(f"  {k}: {v}\n" for k, v in values.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n{lines}"


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: nginx
"""

PATCH = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
      - name: app
        env:
        - name: TOKEN
          value: {CANARY}
"""


@pytest.mark.parametrize("field", ["patches", "patchesStrategicMerge"])
def test_a_fully_encrypted_patch_over_a_plain_deployment(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], field: str
) -> None:
    """sops' default: every value of the patch encrypted, kind and name included."""
    write(tmp_path, "app/deployment.yaml", DEPLOYMENT)
    patch = write(tmp_path, "app/patch.yaml", PATCH)
    encrypt(sops_binary, patch, age_keys[0], regex=None)
    assert CANARY not in patch.read_text()
    entry = "- path: patch.yaml" if field == "patches" else "- patch.yaml"
    write(tmp_path, "app/kustomization.yaml", f"resources:\n- deployment.yaml\n{field}:\n{entry}\n")

    [deployment] = build(root=tmp_path, path="app", keys=keys_for(age_keys[0])).objects

    [container] = deployment.data["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "TOKEN", "value": CANARY}]
    assert container["image"] == "nginx"
    assert "sops" not in deployment.data


def test_flux_patches_layout_encrypted_patches_over_a_generated_secret(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """Flux's testdata/sops/patches, over a Secret generated from an encrypted env file (the
    patched Secret then holds only values that came out of MAC-verified decryption)."""
    env = write(tmp_path, "patches/secret.env", "key=base\n")
    encrypt(sops_binary, env, age_keys[0], regex=None)
    for name, values in (("merge1", {"key": "merge1"}), ("merge2", {"merge2": CANARY})):
        path = write(tmp_path, f"patches/{name}.yaml", secret("secret", **values))
        encrypt(sops_binary, path, age_keys[0])
    write(
        tmp_path,
        "patches/kustomization.yaml",
        "namePrefix: patches-\ngeneratorOptions:\n  disableNameSuffixHash: true\n"
        "secretGenerator:\n- name: secret\n  envs:\n  - secret.env\n"
        "patches:\n  - path: merge1.yaml\n  - path: merge2.yaml\n",
    )

    result = build(root=tmp_path, path="patches", keys=keys_for(age_keys[0]))

    [obj] = result.objects
    assert obj.id.name == "patches-secret"
    data = obj.data.get("data", {})
    string_data = obj.data.get("stringData", {})
    values = {k: base64.b64decode(v).decode() for k, v in data.items()} | string_data
    assert values == {"key": "merge1", "merge2": CANARY}


def test_a_tampered_encrypted_patch_fails_naming_it(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    write(tmp_path, "app/deployment.yaml", DEPLOYMENT)
    patch = write(tmp_path, "app/patch.yaml", PATCH)
    encrypt(sops_binary, patch, age_keys[0], regex=None)
    text = patch.read_text()
    # the patch now targets another object: the name's ciphertext swapped for the image's is
    # caught by the MAC (and the AAD), not applied
    lines = text.splitlines()
    name_at = next(i for i, line in enumerate(lines) if line.strip().startswith("name: ENC["))
    value_at = next(i for i, line in enumerate(lines) if line.strip().startswith("value: ENC["))
    name_enc = lines[name_at].split(": ", 1)[1]
    value_enc = lines[value_at].split(": ", 1)[1]
    lines[name_at] = lines[name_at].replace(name_enc, value_enc)
    lines[value_at] = lines[value_at].replace(value_enc, name_enc)
    patch.write_text("\n".join(lines) + "\n")
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- deployment.yaml\npatches:\n- path: patch.yaml\n",
    )

    with pytest.raises(SealedGitopsError) as exc:
        build(root=tmp_path, path="app", keys=keys_for(age_keys[0]))
    assert exc.value.file == "app/patch.yaml"
    assert CANARY not in str(exc.value)

    isolated = build(
        root=tmp_path, path="app", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE
    )
    assert isolated.objects == []
    assert [f.file for f in isolated.failures] == ["app/patch.yaml"]


def test_an_encrypted_patch_without_keys_names_the_patch(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    write(tmp_path, "app/deployment.yaml", DEPLOYMENT)
    patch = write(tmp_path, "app/patch.yaml", PATCH)
    encrypt(sops_binary, patch, age_keys[0], regex=None)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- deployment.yaml\npatches:\n- path: patch.yaml\n",
    )

    with pytest.raises(SealedGitopsError) as exc:
        build(root=tmp_path, path="app", keys=keys_for(age_keys[1]))
    assert exc.value.file == "app/patch.yaml"
    assert "Is a directory" not in str(exc.value)


def test_kustomize_quoting_a_decrypted_patch_in_its_error_is_redacted(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """kustomize names a patch's target when it matches nothing: the decrypted name is masked."""
    write(tmp_path, "app/deployment.yaml", DEPLOYMENT)
    patch = write(tmp_path, "app/patch.yaml", PATCH.replace("name: app\n", f"name: {CANARY}\n", 1))
    encrypt(sops_binary, patch, age_keys[0], regex=None)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- deployment.yaml\npatches:\n- path: patch.yaml\n",
    )

    with pytest.raises(SealedGitopsError, match="kustomize build failed") as exc:
        build(root=tmp_path, path="app", keys=keys_for(age_keys[0]))
    assert CANARY not in str(exc.value)
    assert "[REDACTED]" in str(exc.value)
