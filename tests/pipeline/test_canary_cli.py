"""The CLI canary (issue 5 item 4): distinctive secret values go through ``build`` and ``diff`` on
success and on every failure path the CLI has (bad MAC, a tampered unencrypted field, wrong key,
manifests invalid or duplicated after decryption, data the API server would refuse) and appear in
no output (stdout and stderr, logs at DEBUG with ``-vv``) and in no file the run could write (the
repository, HOME with its caches, TMPDIR). Only ``--show-secrets`` prints them, which proves each
canary really went through the pipeline. The operator's side (logs, Events, status, an apply
error from the API server) is tests/operator/test_canary.py.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest_control_plane import cluster_tiers, tier_cluster

from .conftest import AgeKey, secret

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_env")]

_MAC = re.compile(r"(mac: ENC\[AES256_GCM,data:)(.)")


@pytest.fixture(scope="module", params=cluster_tiers())
def kubeconfig(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Each test on the emulator and on the real control plane (or the E2E cluster)."""
    with tier_cluster(request) as (path, _):
        yield path


def _sops(sops_binary: str, path: Path, recipient: str, *, everything: bool = False) -> None:
    args = [sops_binary, "encrypt", "--age", recipient, "--in-place", str(path)]
    if not everything:
        args[2:2] = ["--encrypted-regex", "^(data|stringData)$"]
    subprocess.run(
        args,
        check=True,
        capture_output=True,
        env={"SOPS_DISABLE_VERSION_CHECK": "true", "PATH": os.environ["PATH"]},
    )


def _write(path: Path, *docs: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


# Each case writes deploy/ holding the canary and says how `build` must end: (exit code, a text
# stderr must hold). Every case has the canary in a file that opens with the test's key, so
# `--show-secrets` shows it (the canary is real), except the cases that fail before any value is
# opened for the right key.
Case = Callable[[Path, str, str, AgeKey, AgeKey], tuple[int, str]]


def _success(deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey) -> tuple[int, str]:
    _sops(sops, _write(deploy / "db.yaml", secret("db", password=canary)), key.public)
    return 0, ""


def _bad_mac(deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey) -> tuple[int, str]:
    path = _write(deploy / "db.yaml", secret("db", password=canary))
    _sops(sops, path, key.public)
    text = path.read_text()
    path.write_text(_MAC.sub(lambda m: m[1] + ("A" if m[2] != "A" else "B"), text, count=1))
    return 1, "db.yaml"


def _tampered_plain_field(
    deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey
) -> tuple[int, str]:
    # The MAC covers unencrypted values too: moving the Secret to another namespace is caught.
    path = _write(deploy / "db.yaml", secret("db", password=canary))
    _sops(sops, path, key.public)
    path.write_text(path.read_text().replace("namespace: team-a", "namespace: team-b", 1))
    return 1, "db.yaml"


def _wrong_key(deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey) -> tuple[int, str]:
    _sops(sops, _write(deploy / "db.yaml", secret("db", password=canary)), other.public)
    return 1, other.public


def _invalid_after_decryption(
    deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey
) -> tuple[int, str]:
    # Everything encrypted, the name included; decrypted, the name (the canary: "_" is not
    # allowed in a name) is refused, and the error about it must not print it.
    doc = secret(canary, password="valid-password")
    _sops(sops, _write(deploy / "db.yaml", doc), key.public, everything=True)
    return 1, "db.yaml (document 0)"


def _encrypted_config_map(
    deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey
) -> tuple[int, str]:
    # sops encrypts documents of any kind; plaintext goes only into Secrets (invariant 1), so a
    # SOPS ConfigMap is refused, naming the file, and its values are never shown.
    doc: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "ns"},
        "data": {"token": canary},
    }
    path = _write(deploy / "cm.yaml", doc)
    subprocess.run(
        [
            sops,
            "encrypt",
            "--age",
            key.public,
            "--encrypted-regex",
            "^data$",
            "--in-place",
            str(path),
        ],
        check=True,
        capture_output=True,
        env={"SOPS_DISABLE_VERSION_CHECK": "true", "PATH": os.environ["PATH"]},
    )
    return 1, "a SOPS-encrypted ConfigMap (v1) is not decrypted"


def _duplicate_after_decryption(
    deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey
) -> tuple[int, str]:
    for name in ("a.yaml", "b.yaml"):
        path = _write(deploy / name, secret("db", password=canary))
        _sops(sops, path, key.public, everything=True)
    return 1, "also defined"


def _not_base64(
    deploy: Path, canary: str, sops: str, key: AgeKey, other: AgeKey
) -> tuple[int, str]:
    # The API server would refuse this Secret; build passes it on, masked, and diff compares it.
    doc = secret("db")
    del doc["stringData"]
    doc["data"] = {"password": f"{canary} is not base64!"}
    _sops(sops, _write(deploy / "db.yaml", doc), key.public)
    return 0, ""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "-vv", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _forms(canary: str) -> list[bytes]:
    raw = canary.encode()
    return [raw, raw.upper(), base64.b64encode(raw), base64.b64encode(raw.upper())]


def _files_holding(folder: Path, forms: list[bytes]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(form in data for form in forms):
                found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_success, id="success"),
        pytest.param(_bad_mac, id="bad-mac"),
        pytest.param(_tampered_plain_field, id="tampered-unencrypted-field"),
        pytest.param(_wrong_key, id="wrong-key"),
        pytest.param(_invalid_after_decryption, id="invalid-after-decryption"),
        pytest.param(_duplicate_after_decryption, id="duplicate-after-decryption"),
        pytest.param(_encrypted_config_map, id="encrypted-configmap"),
        pytest.param(_not_base64, id="not-base64"),
    ],
)
def test_the_canary_never_leaks_from_build_or_diff(
    tmp_path: Path,
    make: Case,
    sops_binary: str,
    age_key: AgeKey,
    other_age_key: AgeKey,
    kubeconfig: Path,
) -> None:
    canary = f"canary_{uuid.uuid4().hex}_value"
    repo, home, tmp = tmp_path / "repo", tmp_path / "run-home", tmp_path / "run-tmp"
    for folder in (repo, home, tmp):
        folder.mkdir(exist_ok=True)
    deploy = repo / "deploy"
    build_code, expected = make(deploy, canary, sops_binary, age_key, other_age_key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "VAULT_"))}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        TMPDIR=str(tmp),
        SOPS_AGE_KEY_FILE=str(age_key.file),
        SOPS_DISABLE_VERSION_CHECK="true",
    )
    files_before = _files_holding(tmp_path, _forms(canary))

    outputs: dict[str, str] = {}
    for label, args in {
        "build": ["build", str(deploy)],
        "build-json-isolate": ["build", str(deploy), "-o", "json", "--failure-policy", "isolate"],
        "diff": ["diff", str(deploy), "--kubeconfig", str(kubeconfig)],
    }.items():
        result = _run(args, env)
        outputs[label] = result.stdout + result.stderr
        assert "Traceback" not in result.stderr, (label, result.stderr)
        if label.startswith("build"):
            assert result.returncode == build_code, (label, result.stderr)
            assert expected in result.stderr, (label, result.stderr)
        else:
            # diff: 1 = differences (the objects are not in the cluster), 2 = an error
            assert result.returncode == (1 if build_code == 0 else 2), (label, result.stderr)

    leaks = [
        label for label, text in outputs.items() if any(f.decode() in text for f in _forms(canary))
    ]
    assert leaks == []
    assert _files_holding(tmp_path, _forms(canary)) == files_before == []

    # The canary is real: the same run with --show-secrets prints it when the file opened.
    shown = _run(["build", str(deploy), "--show-secrets", "--failure-policy", "isolate"], env)
    if build_code == 0:
        assert canary in shown.stdout, shown.stderr
