"""Issue 12, Must 2: secretGenerator / configMapGenerator over SOPS-encrypted sources, as Flux.

Every source is encrypted by the REAL sops (dotenv, binary, JSON, YAML, INI). The build must give
the Secret with the plaintext, under the SAME name ``kubectl kustomize`` gives over the plaintext
checkout (``sops -d`` of each file, which is what Flux builds), so references keep working; the
plaintext must never be written to the checkout, the temporary directory or the cache, and must
not outlive the build in /dev/shm. What stays refused: a ConfigMap that would hold ciphertext, a
generated Secret with plain literals, a tampered source, a manifest that forges the marker.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import (
    NotEncryptedError,
    RenderError,
    ScopeMismatch,
    SealedGitopsError,
)
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render import staging
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.kustomize import find_kubectl
from sealed_gitops.source.fetch import fetch
from sealed_gitops.source.refs import Ref
from tests.conftest_tools import AgeKey

#: random per process: no file of the test suite (or another xdist worker's build) holds it
CANARY = f"canary-generated-{secrets.token_hex(8)}"
#: when the canary came to be: a file whose inode has not changed since (its ctime, which
#: nothing can set back, unlike mtime) cannot hold it, so the search reads only newer files
CANARY_BORN = time.time() - 2.0


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SOPS_DISABLE_VERSION_CHECK": "true"}


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sops(binary: str, *args: str, cwd: Path) -> bytes:
    done = subprocess.run(
        [binary, *args], check=True, capture_output=True, env=_env(), cwd=cwd, timeout=60
    )
    return done.stdout


def encrypt(binary: str, path: Path, age: AgeKey, *, fmt: str | None = None) -> None:
    """``sops encrypt --in-place`` with the real binary (format from the name, or ``fmt``)."""
    extra = ["--input-type", fmt, "--output-type", fmt] if fmt else []
    sops(binary, "encrypt", "--age", age.public, *extra, "--in-place", str(path), cwd=path.parent)


def keys_for(age: AgeKey) -> DecryptionKeys:
    ring = discover_keyring(age_identity_files=[age.file], use_environment=False)
    return DecryptionKeys(sops=ring)


def kustomize_plain(root: Path, rel: str, binary: str, age: AgeKey, encrypted: list[str]) -> Any:
    """What ``kubectl kustomize`` gives over a copy where each encrypted file is ``sops -d``."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as scratch:
        copy = Path(scratch) / "repo"
        shutil.copytree(root, copy)
        env = {**_env(), "SOPS_AGE_KEY_FILE": str(age.file)}
        for rel_file in encrypted:
            fmt = _sops_type(rel_file)
            plain = subprocess.run(
                [
                    binary,
                    "decrypt",
                    *(["--input-type", fmt, "--output-type", fmt] if fmt else []),
                    str(copy / rel_file),
                ],
                check=True,
                capture_output=True,
                env=env,
                timeout=60,
            ).stdout
            (copy / rel_file).write_bytes(plain)
        out = subprocess.run(
            [find_kubectl(), "kustomize", str(copy / rel)],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
    return list(yaml.safe_load_all(out))


def _sops_type(rel: str) -> str | None:
    return None if Path(rel).suffix in (".yaml", ".yml", ".json", ".env", ".ini") else "binary"


def by_kind(objects: list[Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def assert_no_plaintext_anywhere(*places: Path) -> None:
    """The canary is in no file under ``places`` (the checkout, tmp, /dev/shm, a cache).

    Only files whose inode changed since the canary was made are read (``find -newerct``: a
    whole /tmp on a machine that runs the suite holds hundreds of thousands of files, and
    walking them in Python took seconds per call).
    """
    needle = CANARY.encode()
    b64 = base64.b64encode(CANARY.encode())[:16]
    for place in places:
        # ctime, not mtime: nothing can set it back, so a file written after the canary
        # existed is newer than CANARY_BORN by its ctime whatever its mtime says
        found = subprocess.run(
            ["find", str(place), "-xdev", "-type", "f", "-size", "-16M",
             "-newerct", f"@{CANARY_BORN:.3f}", "-print0"],
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip
        for name in found.stdout.split(b"\0"):
            if not name:
                continue
            try:
                data = Path(os.fsdecode(name)).read_bytes()
            except OSError:
                continue  # gone (another worker's), or not ours to read
            assert needle not in data, f"plaintext written to {os.fsdecode(name)}"
            assert b64 not in data, f"base64 plaintext written to {os.fsdecode(name)}"


@pytest.fixture
def memory_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private directory on /dev/shm for this test's staging copies (others run beside it)."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as private:
        monkeypatch.setattr(staging, "MEMORY_DIR", Path(private))
        yield Path(private)


ENV_FILE = f"DB_PASSWORD={CANARY}\nDB_USER=admin\n"

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
        envFrom:
        - secretRef:
            name: app-secret
"""


def envs_repo(root: Path, binary: str, age: AgeKey) -> None:
    write(root, "app/secret.env", ENV_FILE)
    encrypt(binary, root / "app/secret.env", age)
    write(root, "app/deployment.yaml", DEPLOYMENT)
    write(
        root,
        "app/kustomization.yaml",
        "resources:\n- deployment.yaml\nsecretGenerator:\n- name: app-secret\n  envs:\n"
        "  - secret.env\n",
    )


def test_envs_over_a_sops_dotenv_file_give_the_plaintext_under_kustomizes_name(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], memory_dir: Path
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    assert CANARY.encode() not in (root / "app/secret.env").read_bytes()

    result = build(root=root, path="app", keys=keys_for(age_keys[0]))

    objects = [o.data for o in result.objects]
    [secret] = by_kind(objects, "Secret")
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == CANARY
    assert set(secret["data"]) == {"DB_PASSWORD", "DB_USER"}
    assert "annotations" not in secret["metadata"]  # the build's marker is gone
    expected = kustomize_plain(root, "app", sops_binary, age_keys[0], ["app/secret.env"])
    [plain_secret] = by_kind(expected, "Secret")
    assert secret["metadata"]["name"] == plain_secret["metadata"]["name"] != "app-secret"
    [deployment] = by_kind(objects, "Deployment")
    ref = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]
    assert ref["name"] == secret["metadata"]["name"]  # the reference follows the hash suffix
    assert list(memory_dir.iterdir()) == []  # the memory-backed copy is removed
    assert_no_plaintext_anywhere(root, Path(tempfile.gettempdir()), Path("/dev/shm"))


@pytest.mark.parametrize(
    ("name", "content", "entry"),
    [
        ("file.txt", f"{CANARY}\nsecond line\n", "key=file.txt"),  # binary, Flux's files layout
        ("config.json", f'{{\n\t"token": "{CANARY}"\n}}', "config.json"),
        ("config.yaml", f"token: {CANARY}\nuser: admin\n", "config.yaml"),
        ("config.ini", f"[db]\npassword = {CANARY}\n", "config.ini"),
        ("creds.bin", f"raw-{CANARY}", "creds.bin"),
    ],
    ids=["binary-key", "json", "yaml", "ini", "binary"],
)
def test_files_over_sops_files_of_every_format(
    tmp_path: Path,
    sops_binary: str,
    age_keys: list[AgeKey],
    name: str,
    content: str,
    entry: str,
) -> None:
    root = tmp_path / "repo"
    write(root, f"app/{name}", content)
    encrypt(sops_binary, root / f"app/{name}", age_keys[0], fmt=_sops_type(name))
    write(
        root,
        "app/kustomization.yaml",
        f"secretGenerator:\n- name: files\n  files:\n  - {entry}\n",
    )

    result = build(root=root, path="app", keys=keys_for(age_keys[0]))

    [secret] = by_kind([o.data for o in result.objects], "Secret")
    [value] = secret["data"].values()
    assert CANARY in base64.b64decode(value).decode()
    expected = kustomize_plain(root, "app", sops_binary, age_keys[0], [f"app/{name}"])
    [plain_secret] = by_kind(expected, "Secret")
    assert secret["metadata"]["name"] == plain_secret["metadata"]["name"]
    assert secret["data"] == plain_secret["data"]
    assert_no_plaintext_anywhere(root, Path(tempfile.gettempdir()))


def test_flux_files_layout_configmap_beside_secret_generator_gets_the_plaintext(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """Flux's testdata/sops/files: both generators read one encrypted file (Flux decrypts it in
    place, so its test expects the ConfigMap to hold the plaintext)."""
    root = tmp_path / "repo"
    write(root, "files/file.txt", "value")
    encrypt(sops_binary, root / "files/file.txt", age_keys[0], fmt="binary")
    write(
        root,
        "files/kustomization.yaml",
        "namePrefix: files-\ngeneratorOptions:\n  disableNameSuffixHash: true\n"
        "secretGenerator:\n- name: secret\n  files:\n  - key=file.txt\n"
        "configMapGenerator:\n- name: configmap\n  files:\n  - key=file.txt\n",
    )

    objects = [o.data for o in build(root=root, path="files", keys=keys_for(age_keys[0])).objects]

    [secret] = by_kind(objects, "Secret")
    [configmap] = by_kind(objects, "ConfigMap")
    assert secret["metadata"]["name"] == "files-secret"
    assert base64.b64decode(secret["data"]["key"]) == b"value"
    assert configmap["data"]["key"] == "value"


def test_a_configmap_over_an_encrypted_file_alone_is_refused_not_applied_with_ciphertext(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    root = tmp_path / "repo"
    write(root, "app/settings.env", ENV_FILE)
    encrypt(sops_binary, root / "app/settings.env", age_keys[0])
    write(
        root,
        "app/kustomization.yaml",
        "configMapGenerator:\n- name: cm\n  envs:\n  - settings.env\n",
    )

    with pytest.raises(RenderError, match="ConfigMap would read this SOPS-encrypted file") as exc:
        build(root=root, path="app", keys=keys_for(age_keys[0]))
    assert exc.value.file == "app/settings.env"

    result = build(root=root, path="app", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE)
    assert result.objects == []
    assert [f.file for f in result.failures] == ["app/settings.env"]


def test_component_with_a_secret_generator_over_an_encrypted_env(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """Flux's testdata/sops/component."""
    root = tmp_path / "repo"
    write(root, "component/env.env", ENV_FILE)
    encrypt(sops_binary, root / "component/env.env", age_keys[0])
    write(
        root,
        "component/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ngeneratorOptions:\n"
        "  disableNameSuffixHash: true\nsecretGenerator:\n  - name: component\n    envs:\n"
        "      - env.env\n",
    )
    write(root, "app/kustomization.yaml", "namespace: apps\ncomponents:\n- ../component\n")

    objects = [o.data for o in build(root=root, path="app", keys=keys_for(age_keys[0])).objects]

    [secret] = by_kind(objects, "Secret")
    assert secret["metadata"] == {"name": "component", "namespace": "apps"}
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == CANARY


def test_a_literal_beside_an_encrypted_source_is_a_plain_secret_in_git(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    write(
        root,
        "app/kustomization.yaml",
        "secretGenerator:\n- name: app-secret\n  envs:\n  - secret.env\n  literals:\n"
        "  - API_KEY=committed-in-plaintext\n",
    )
    with pytest.raises(NotEncryptedError, match="plain Secret in Git"):
        build(root=root, path="app", keys=keys_for(age_keys[0]))


def test_a_manifest_that_forges_the_generated_marker_is_still_a_plain_secret(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    write(
        root,
        "app/forged.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: forged\n  annotations:\n"
        "    sealed-gitops.io/generated-from-sops: guess-0\nstringData:\n  k: plaintext-in-git\n",
    )
    write(
        root,
        "app/kustomization.yaml",
        "resources:\n- deployment.yaml\n- forged.yaml\nsecretGenerator:\n- name: app-secret\n"
        "  envs:\n  - secret.env\n",
    )
    result = build(root=root, path="app", keys=keys_for(age_keys[0]), policy=FailurePolicy.ISOLATE)
    assert [f.object for f in result.failures] == ["Secret forged"]
    assert isinstance(result.failures[0].error, NotEncryptedError)
    assert len(by_kind([o.data for o in result.objects], "Secret")) == 1


def test_a_tampered_source_fails_its_mac(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    path = root / "app/secret.env"
    lines = path.read_text().splitlines()
    # swap the two encrypted values: each is bound to its key by the AAD and the MAC
    first, second = lines[0].partition("=")[2], lines[1].partition("=")[2]
    lines[0] = lines[0].replace(first, second)
    lines[1] = lines[1].replace(second, first)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SealedGitopsError) as exc:
        build(root=root, path="app", keys=keys_for(age_keys[0]))
    assert exc.value.file == "app/secret.env"
    assert CANARY not in str(exc.value)


def test_without_a_memory_backed_directory_the_build_is_refused(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    disk = tmp_path / "disk"
    disk.mkdir()
    if staging.memory_backed(disk):
        pytest.skip("the test's temporary directory is itself on tmpfs here")
    monkeypatch.setattr(staging, "MEMORY_DIR", disk)
    with pytest.raises(RenderError, match="memory-backed"):
        build(root=root, path="app", keys=keys_for(age_keys[0]))
    assert list(disk.iterdir()) == []


@pytest.mark.parametrize(
    ("inner_name", "content", "key"),
    [
        ("inner.bin", f"inside-{CANARY}", "key"),  # Flux's layout: binary store, key "key"
        ("inner.env", f"TOKEN={CANARY}\n", "app.env"),
        ("inner.yaml", f"token: {CANARY}\n", "values.yaml"),
        ("inner.json", f'{{\n\t"token": "{CANARY}"\n}}\n', "values.json"),
        # Flux's docker-config layout: a kubernetes.io/dockerconfigjson key holds JSON
        ("inner.json", f'{{\n\t"auths": "{CANARY}"\n}}\n', ".dockerconfigjson"),
    ],
    ids=["binary", "dotenv", "yaml", "json", "dockerconfigjson"],
)
def test_a_secret_whose_data_holds_a_sops_document_is_decrypted(
    tmp_path: Path,
    sops_binary: str,
    age_keys: list[AgeKey],
    inner_name: str,
    content: str,
    key: str,
) -> None:
    """Flux's testdata/sops/inside: a Secret data value is a whole sops file; it decrypts to
    the plaintext file in the format the key's name says."""
    root = tmp_path / "repo"
    inner = write(root, f"scratch/{inner_name}", content)
    encrypt(sops_binary, inner, age_keys[0], fmt=_sops_type(inner_name))
    encoded = base64.b64encode(inner.read_bytes()).decode()
    inner.unlink()
    write(
        root,
        "inside/secret.yaml",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\ndata:\n  {key}: {encoded}\n",
    )
    write(root, "inside/kustomization.yaml", "resources:\n- secret.yaml\n")

    for path in ("inside", "inside/secret.yaml"):  # built by kustomize, and walked as a file
        [obj] = build(root=root, path=path, keys=keys_for(age_keys[0])).objects
        assert base64.b64decode(obj.data["data"][key]).decode() == content


def test_the_cli_build_leaves_no_plaintext_in_checkout_home_or_tmp(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    root = tmp_path / "repo"
    envs_repo(root, sops_binary, age_keys[0])
    (root / ".git").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {**_env(), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "sealed-gitops"),
            "build",
            str(root / "app"),
            "--age-identity",
            str(age_keys[0].file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kind: Secret" in done.stdout
    assert_no_plaintext_anywhere(root, home, Path(tempfile.gettempdir()), Path("/dev/shm"))


def test_a_build_from_the_git_cache_writes_no_plaintext_into_it(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], memory_dir: Path
) -> None:
    """The operator's path: fetch into the git cache, build the checkout there. The checkout
    stays as committed (git sees no change) and no file of the cache holds the plaintext."""
    origin = tmp_path / "origin"
    envs_repo(origin, sops_binary, age_keys[0])
    git_env = {
        **_env(),
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=origin, check=True, env=git_env, timeout=60)
    cache = tmp_path / "cache"

    artifact = fetch(origin.as_uri(), Ref(branch="main"), cache_dir=cache)
    result = build(root=artifact.path, path="app", keys=keys_for(age_keys[0]))

    [secret] = by_kind([o.data for o in result.objects], "Secret")
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == CANARY
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=artifact.path,
        check=True,
        capture_output=True,
        text=True,
        env=git_env,
        timeout=60,
    )
    assert status.stdout == ""
    assert list(memory_dir.iterdir()) == []
    assert_no_plaintext_anywhere(cache, Path(tempfile.gettempdir()))


def test_a_files_key_whose_format_does_not_match_the_source_is_refused_not_ciphertext(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey]
) -> None:
    """``config=secret.yaml`` picks the binary store by the key (as Flux does), which does not
    open a YAML sops file: Flux would generate a Secret of ciphertext; here the build fails."""
    root = tmp_path / "repo"
    write(root, "app/secret.yaml", f"token: {CANARY}\n")
    encrypt(sops_binary, root / "app/secret.yaml", age_keys[0])
    write(
        root,
        "app/kustomization.yaml",
        "secretGenerator:\n- name: s\n  files:\n  - config=secret.yaml\n",
    )
    with pytest.raises(RenderError, match="as ciphertext") as exc:
        build(root=root, path="app", keys=keys_for(age_keys[0]))
    assert exc.value.file == "app/secret.yaml"


@pytest.mark.parametrize("layout", ["envs", "inside"])
def test_a_strict_namespace_binding_refuses_files_that_cannot_name_their_namespace(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], layout: str
) -> None:
    """With ``namespaceBinding: Strict`` a SOPS object must name, under its MAC, where it lands.
    A dotenv or binary file cannot: team-b could copy team-a's encrypted env file into a
    generator of its own. So Strict refuses generator sources, patches and Secret data values
    before decrypting them, naming the file."""
    root = tmp_path / "repo"
    if layout == "envs":
        envs_repo(root, sops_binary, age_keys[0])
        path, named = "app", "app/secret.env"
    else:
        inner = write(root, "scratch/inner.env", ENV_FILE)
        encrypt(sops_binary, inner, age_keys[0])
        encoded = base64.b64encode(inner.read_bytes()).decode()
        inner.unlink()
        body = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a.env: {encoded}\n"
        write(root, "inside/secret.yaml", body)
        path, named = "inside/secret.yaml", "inside/secret.yaml"
    ring = discover_keyring(age_identity_files=[age_keys[0].file], use_environment=False)
    strict = DecryptionKeys(sops=ring, sops_binding=NamespaceBinding.STRICT)

    with pytest.raises(ScopeMismatch, match="Strict") as exc:
        build(root=root, path=path, keys=strict)
    assert exc.value.file == named
    assert CANARY not in str(exc.value)
