"""verify: the pre-commit check, on files and directories, with and without keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import SECRET_YAML, AgeKey, encrypt_file, run, run_cli

SEALED = """\
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata: {name: db, namespace: team-a}
spec:
  encryptedData: {password: AgBy8hCi}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"
EMPTY_SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: e}\ntype: Opaque\n"


def _sops_file(work: Path, key: AgeKey, name: str = "enc.yaml") -> Path:
    path = work / name
    path.write_text(SECRET_YAML)
    return encrypt_file(path, key.public)


def _mutate_meta(path: Path, **changes: object) -> None:
    doc = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            doc["sops"].pop(key)
        else:
            doc["sops"][key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.parametrize(
    ("content", "ok"),
    [
        (SECRET_YAML, False),
        (SEALED, True),
        (CONFIGMAP, True),
        (EMPTY_SECRET, True),
        (CONFIGMAP + "---\n" + SECRET_YAML, False),
        ('{"apiVersion": "v1", "kind": "Secret", "data": {"a": "Yg=="}}', False),
    ],
    ids=["plain-secret", "sealed", "configmap", "empty-secret", "multi-doc", "json-secret"],
)
def test_plain_files(work: Path, content: str, ok: bool) -> None:
    path = work / ("f.json" if content.startswith("{") else "f.yaml")
    path.write_text(content)
    result = run("verify", str(path))
    assert (result.exit_code == 0) is ok, result.stderr
    if not ok:
        assert f"error: {path}" in result.stderr
        assert "not encrypted" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mac": None}, "without a MAC"),
        ({"mac": ""}, "without a MAC"),
        ({"mac": "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]"}, "well-formed"),
        ({"mac": "not-a-mac"}, "well-formed"),
        ({"lastmodified": "yesterday"}, "lastmodified"),
        ({"age": []}, "no master key"),
    ],
)
def test_sops_structure_without_keys(
    work: Path, age_keys: list[AgeKey], change: dict[str, object], message: str
) -> None:
    path = _sops_file(work, age_keys[0])
    assert run("verify", str(path)).exit_code == 0
    _mutate_meta(path, **change)
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert message in result.stderr


def test_pasted_plaintext_in_encrypted_secret(work: Path, age_keys: list[AgeKey]) -> None:
    path = _sops_file(work, age_keys[0])
    doc = yaml.safe_load(path.read_text())
    doc["stringData"]["token"] = "pasted-in-clear"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert "stringData.token is not encrypted" in result.stderr
    assert "pasted-in-clear" not in result.stderr


def test_mac_value_checked_only_with_a_key(
    work: Path, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sops_file(work, age_keys[0])
    # Swap two encrypted values: the structure stays perfect, the MAC no longer matches.
    doc = yaml.safe_load(path.read_text())
    sd = doc["stringData"]
    sd["user"], sd["port"] = sd["port"], sd["user"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    without = run("verify", str(path))
    assert without.exit_code == 0
    assert "1 SOPS checked for structure only" in without.stderr
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys[0].file))
    with_key = run("verify", str(path))
    assert with_key.exit_code == 1
    assert f"error: {path}" in with_key.stderr
    assert run("verify", "--no-decrypt", str(path)).exit_code == 0


def test_directory_walk_reports_every_failure(work: Path, age_keys: list[AgeKey]) -> None:
    (work / "apps" / "a").mkdir(parents=True)
    (work / ".git").mkdir()
    (work / ".git" / "leak.yaml").write_text(SECRET_YAML)  # hidden folders are skipped
    (work / "apps" / "a" / "plain.yml").write_text(SECRET_YAML)
    (work / "apps" / "ok.yaml").write_text(CONFIGMAP)
    (work / "apps" / "notes.txt").write_text(SECRET_YAML)  # not a manifest extension
    (work / "bad.json").write_text(
        '{"apiVersion": "v1", "kind": "Secret", "stringData": {"a": "b"}}'
    )
    _sops_file(work / "apps", age_keys[0])
    result = run("verify", str(work))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sorted(lines) == sorted([
        f"error: {work / 'apps' / 'a' / 'plain.yml'}: Kubernetes Secret is not encrypted "
        "(use encrypt or seal)",
        f"error: {work / 'bad.json'}: Kubernetes Secret is not encrypted (use encrypt or seal)",
    ])
    assert re.search(r"4 files checked: .* 2 failed", result.stderr)


def test_broken_yaml_fails(work: Path) -> None:
    path = work / "broken.yaml"
    path.write_text("a: [unclosed\n")
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert f"error: {path}" in result.stderr


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "sealed-gitops-verify"]
    assert hook["language"] == "python"
    assert hook["entry"] == "sealed-gitops verify"
    for name in ("a.yaml", "b/c.yml", "d.json"):
        assert re.search(hook["files"], name)
    assert not re.search(hook["files"], "e.txt")


def test_hook_as_a_process(work: Path) -> None:
    (work / "plain.yaml").write_text(SECRET_YAML)
    (work / "ok.yaml").write_text(CONFIGMAP)
    bad = run_cli("verify", "plain.yaml", "ok.yaml", cwd=work)
    assert bad.returncode == 1
    assert b"Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[0] == b"error: plain.yaml: Kubernetes Secret is not " \
        b"encrypted (use encrypt or seal)"
    good = run_cli("verify", "ok.yaml", cwd=work)
    assert good.returncode == 0, good.stderr
