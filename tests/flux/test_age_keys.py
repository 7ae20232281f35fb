"""age key types and key environment that sops users have: SSH recipients and identities,
post-quantum identities beside the others, SOPS_AGE_RECIPIENTS, and identities we cannot use
(plugins) being skipped. The post-quantum type against sops 3.12 and age 1.3 is in
``test_age_pq.py``.

Every interop test runs the real sops 3.11 binary both ways: the file sops writes opens with ours,
the file we write opens with sops. The environment is emptied of the developer's keys and HOME is
the test's folder, so only the keys a test makes can help.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto.age_pq import PQIdentity
from sealed_gitops.crypto.sops.document import decrypt_document
from sealed_gitops.keys.discovery import keyring_from_secret_data
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import isolate_environment
from tests.operator.conftest import (
    Setup,
    decoded,
    is_ready,
    wait_for,
)

CANARY = "canary-age-keys-7Qx2"
PLAIN = f"user: alice\npassword: {CANARY}\n"
#: A post-quantum identity (age 1.3 ``age-keygen -pq``): usable, never skipped.
_PQ = PQIdentity.generate()
PQ_IDENTITY = _PQ.secret_text()
PQ_RECIPIENT = _PQ.to_public()
#: An age plugin recipient and identity: recognised, unsupported (they need the plugin binary).
PLUGIN_RECIPIENT = "age1yubikey1" + "q" * 58
PLUGIN_IDENTITY = "AGE-PLUGIN-YUBIKEY-1" + "Q" * 40


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key from the developer's environment; HOME and the cwd inside the test folder."""
    return isolate_environment(monkeypatch, tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ssh_key(folder: Path, kind: str, name: str | None = None) -> tuple[Path, str]:
    """A new SSH key pair made by ssh-keygen: (private key file, public key line)."""
    path = folder / (name or f"id_{kind}")
    args = ["-t", kind] + (["-b", "2048"] if kind == "rsa" else [])
    subprocess.run(
        ["ssh-keygen", "-q", *args, "-N", "", "-C", "me@example", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path, path.with_suffix(".pub").read_text().strip()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sops_encrypt_to(work: Path, recipient: str) -> Path:
    path = write(work / "plain.yaml", PLAIN)
    out = run_sops(["encrypt", "--age", recipient, str(path)], cwd=str(work))
    enc = work / "sops-enc.yaml"
    enc.write_bytes(out.stdout)
    assert CANARY.encode() not in out.stdout
    return enc


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_sops_ssh_recipient_opens_with_ours(
    sops_binary: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    key, public = ssh_key(isolated_env.parent, kind)
    enc = sops_encrypt_to(isolated_env, public)
    assert yaml.safe_load(enc.read_text())["sops"]["age"][0]["recipient"].startswith("ssh-")
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(key))
    result = run("decrypt", str(enc))
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout) == yaml.safe_load(PLAIN)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_ours_to_ssh_recipient_opens_with_sops(
    sops_binary: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    key, public = ssh_key(isolated_env.parent, kind)
    path = write(isolated_env / "app.yaml", PLAIN)
    result = run("encrypt", str(path), "--age", public)
    assert result.exit_code == 0, result.stderr
    enc = write(isolated_env / "ours.yaml", result.stdout)
    out = run_sops(
        ["decrypt", str(enc)],
        cwd=str(isolated_env),
        env={"SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(key)},
    )
    assert yaml.safe_load(out.stdout) == yaml.safe_load(PLAIN)
    # ... and with ours too, from the default ~/.ssh/id_<kind> as sops reads it.
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / f"id_{kind}").write_bytes(key.read_bytes())
    again = run("decrypt", str(enc))
    assert again.exit_code == 0, again.stderr
    assert CANARY in again.stdout


def test_ssh_recipient_from_sops_yaml_rule(
    sops_binary: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, public = ssh_key(isolated_env.parent, "ed25519")
    write(isolated_env / ".sops.yaml", f"creation_rules:\n  - age: '{public}'\n")
    path = write(isolated_env / "app.yaml", PLAIN)
    result = run("encrypt", str(path))
    assert result.exit_code == 0, result.stderr
    enc = write(isolated_env / "ours.yaml", result.stdout)
    out = run_sops(
        ["decrypt", str(enc)],
        cwd=str(isolated_env),
        env={"SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(key)},
    )
    assert CANARY.encode() in out.stdout


def test_pq_identity_line_beside_the_good_key_is_a_key_too(
    sops_binary: str,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    age_keys: list[AgeKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    enc = sops_encrypt_to(isolated_env, age_keys[0].public)
    path = write(isolated_env / "app.yaml", PLAIN)
    pq_enc = write(
        isolated_env / "pq.yaml", run("encrypt", str(path), "--age", PQ_RECIPIENT).stdout
    )
    keys = write(
        isolated_env.parent / "keys.txt",
        "# created: 2026-01-01\n# public key: age1pq1...\n"
        f"{PQ_IDENTITY}\n\n# public key: {age_keys[0].public}\n{age_keys[0].secret}\n",
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys))
    with caplog.at_level(logging.INFO):
        for file in (enc, pq_enc):
            result = run("decrypt", str(file))
            assert result.exit_code == 0, result.stderr
            assert CANARY in result.stdout
    assert "skipped" not in caplog.text and PQ_IDENTITY not in caplog.text


def test_pq_identity_as_its_own_identity_file(
    sops_binary: str, isolated_env: Path, age_keys: list[AgeKey]
) -> None:
    enc = sops_encrypt_to(isolated_env, age_keys[1].public)
    pq = write(isolated_env.parent / "pq.txt", f"{PQ_IDENTITY}\n")
    result = run("decrypt", str(enc), "--age-identity", str(pq), "--age-identity",
                 str(age_keys[1].file))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert CANARY in result.stdout


def test_unknown_lines_are_skipped_not_fatal(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    enc = write(
        isolated_env / "enc.yaml", run("encrypt", str(path), "--age", age_keys[2].public).stdout
    )
    monkeypatch.setenv(
        "SOPS_AGE_KEY",
        f"AGE-PLUGIN-YUBIKEY-1QQQQ\nnot a key at all\n{age_keys[2].secret}\n",
    )
    result = run("decrypt", str(enc))
    assert result.exit_code == 0, result.stderr
    assert CANARY in result.stdout


def _plugin_file(isolated_env: Path, age_keys: list[AgeKey]) -> Path:
    """A file for an age plugin recipient only (the shape sops writes for ``age1yubikey1...``)."""
    path = write(isolated_env / "app.yaml", PLAIN)
    doc = yaml.safe_load(run("encrypt", str(path), "--age", age_keys[0].public).stdout)
    doc["sops"]["age"][0]["recipient"] = PLUGIN_RECIPIENT
    return write(isolated_env / "plugin-enc.yaml", yaml.safe_dump(doc))


def test_file_only_for_plugin_recipient_names_file_and_type(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]
) -> None:
    enc = _plugin_file(isolated_env, age_keys)
    monkeypatch.setenv("SOPS_AGE_KEY", f"{PLUGIN_IDENTITY}\n{PQ_IDENTITY}\n{age_keys[1].secret}\n")
    result = CliRunner().invoke(cli, ["decrypt", str(enc)])
    assert result.exit_code != 0
    assert "plugin-enc.yaml" in result.stderr
    assert "age plugin" in result.stderr and "unsupported recipient type" in result.stderr
    assert CANARY not in result.stdout + result.stderr


def test_file_only_for_another_pq_key_is_no_matching_key(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    other = PQIdentity.generate()
    enc = write(
        isolated_env / "pq-enc.yaml", run("encrypt", str(path), "--age", other.to_public()).stdout
    )
    monkeypatch.setenv("SOPS_AGE_KEY", f"{PQ_IDENTITY}\n{age_keys[1].secret}\n")
    result = CliRunner().invoke(cli, ["decrypt", str(enc)])
    assert result.exit_code != 0
    assert "pq-enc.yaml" in result.stderr and "no available key" in result.stderr
    assert "unsupported" not in result.stderr
    assert CANARY not in result.stdout + result.stderr and PQ_IDENTITY not in result.stderr


def test_plugin_recipient_for_encrypt_is_unsupported_recipient_type(isolated_env: Path) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    write(isolated_env / ".sops.yaml", f"creation_rules:\n  - age: {PLUGIN_RECIPIENT}\n")
    result = CliRunner().invoke(cli, ["encrypt", str(path)])
    assert result.exit_code != 0
    assert "unsupported recipient type" in result.stderr and "age plugin" in result.stderr
    assert "app.yaml" in result.stderr


def test_pq_recipient_from_sops_yaml_rule(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    write(isolated_env / ".sops.yaml", f"creation_rules:\n  - age: {PQ_RECIPIENT}\n")
    result = run("encrypt", str(path))
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["sops"]["age"][0]["recipient"] == PQ_RECIPIENT
    enc = write(isolated_env / "enc.yaml", result.stdout)
    monkeypatch.setenv("SOPS_AGE_KEY", PQ_IDENTITY)
    again = run("decrypt", str(enc))
    assert again.exit_code == 0, again.stderr
    assert CANARY in again.stdout


def test_sops_age_recipients_used_when_no_rule_matches(
    sops_binary: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", f"{age_keys[0].public},{age_keys[1].public}")
    result = run("encrypt", str(path))
    assert result.exit_code == 0, result.stderr
    enc = write(isolated_env / "enc.yaml", result.stdout)
    recipients = {s["recipient"] for s in yaml.safe_load(result.stdout)["sops"]["age"]}
    assert recipients == {age_keys[0].public, age_keys[1].public}
    out = run_sops(
        ["decrypt", str(enc)], cwd=str(isolated_env), env={"SOPS_AGE_KEY": age_keys[1].secret}
    )
    assert CANARY.encode() in out.stdout


def test_operator_secret_with_pq_entry_and_ssh_key(
    isolated_env: Path, age_keys: list[AgeKey], caplog: pytest.LogCaptureFixture
) -> None:
    """The decryption Secret goes through the same parsing: a post-quantum line is a key, a
    plugin line is a log line only."""
    key, public = ssh_key(isolated_env.parent, "ed25519")
    path = write(isolated_env / "app.yaml", PLAIN)
    files = ((age_keys[0].public, "x.yaml"), (public, "s.yaml"), (PQ_RECIPIENT, "pq.yaml"))
    for recipient, name in files:
        out = run("encrypt", str(path), "--age", recipient)
        assert out.exit_code == 0, out.stderr
        write(isolated_env / name, out.stdout)
    data = {
        "age.agekey": f"{PLUGIN_IDENTITY}\n{PQ_IDENTITY}\n{age_keys[0].secret}\n".encode(),
        "ssh.agekey": key.read_bytes(),
    }
    with caplog.at_level(logging.WARNING), keyring_from_secret_data(data) as ring:
        for _, name in files:
            raw = (isolated_env / name).read_bytes()
            doc = decrypt_document(raw, unwrapper=ring, file=name)
            assert CANARY in str(doc.branches)
    assert "secret entry age.agekey line 1" in caplog.text and "plugin" in caplog.text
    assert "line 2" not in caplog.text and PQ_IDENTITY not in caplog.text


def test_passphrase_protected_ssh_key_is_skipped(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]
) -> None:
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(ssh_dir / "id_ed25519")],
        check=True,
        capture_output=True,
    )
    path = write(isolated_env / "app.yaml", PLAIN)
    enc = write(
        isolated_env / "enc.yaml", run("encrypt", str(path), "--age", age_keys[0].public).stdout
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys[0].file))
    result = run("decrypt", str(enc))
    assert result.exit_code == 0, result.stderr
    assert CANARY in result.stdout


def test_ssh_identity_never_echoed_on_a_wrong_key(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, public = ssh_key(isolated_env.parent, "ed25519")
    other = pyrage.x25519.Identity.generate()
    path = write(isolated_env / "app.yaml", PLAIN)
    enc = write(isolated_env / "enc.yaml", run("encrypt", str(path), "--age", public).stdout)
    monkeypatch.setenv("SOPS_AGE_KEY", str(other))
    result = CliRunner().invoke(cli, ["decrypt", str(enc)])
    assert result.exit_code != 0
    body = key.read_text().splitlines()[1]
    assert body not in result.stderr and str(other) not in result.stderr


def _secret_manifest(name: str, value: str) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n"
        f"type: Opaque\nstringData:\n  password: {value}\n"
    )


def test_operator_applies_with_pq_line_and_ssh_key_in_the_secret(
    sops_binary: str,
    setup: Setup,
    operator_factory: Callable[..., OperatorThread],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """End to end: files the real sops encrypted, one for an age key, one for an SSH key; the
    decryption Secret holds a plugin line and a post-quantum key before the age key (Flux's
    ``age.agekey``) and the SSH private key. Both Secrets are applied; the skipped plugin line is
    a log line naming the Secret, the post-quantum key is no note."""
    key, public = ssh_key(setup.repo.path.parent, "ed25519", name="deploy_key")
    deploy = setup.repo.path / "deploy"
    deploy.mkdir(parents=True)
    for name, recipient in (("by-age", setup.recipient), ("by-ssh", public)):
        path = write(deploy / f"{name}.yaml", _secret_manifest(name, f"{CANARY}-{name}"))
        run_sops(
            ["encrypt", "--age", recipient, "--encrypted-regex", "^(data|stringData)$", "-i",
             str(path)],
            cwd=str(deploy),
        )  # fmt: skip
        assert CANARY not in path.read_text()
    write(deploy / "kustomization.yaml", "resources:\n- by-age.yaml\n- by-ssh.yaml\n")
    setup.push({})
    setup.secret_object(
        "sops-keys",
        {
            "age.agekey": f"# pq\n{PLUGIN_IDENTITY}\n{PQ_IDENTITY}\n{setup.age_secret}\n",
            "ssh.agekey": key.read_bytes(),
        },
    )
    setup.objects(keys_secret=False)
    with caplog.at_level(logging.WARNING):
        operator_factory(setup.namespace)
        wait_for(lambda: is_ready(setup.kube.sync()), timeout=60, what="Sync Ready")
    for name in ("by-age", "by-ssh"):
        secret = setup.kube.secret(name)
        assert secret is not None
        assert decoded(secret)["password"] == f"{CANARY}-{name}"
    assert f"secret {setup.namespace}/sops-keys entry age.agekey line 2" in caplog.text
    assert "line 3" not in caplog.text and PQ_IDENTITY not in caplog.text
