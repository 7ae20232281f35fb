"""encrypt and decrypt: recipients from flags and .sops.yaml, rules, formats, sops interop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from .conftest import CANARY, SECRET_YAML, AgeKey, encrypt_file, run, run_cli

ENC = "ENC[AES256_GCM,"


def _doc(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_round_trip_with_age_flag(
    secret_file: Path, age_keys: list[AgeKey], use_key: AgeKey,
) -> None:
    result = run("encrypt", str(secret_file), "--age", use_key.public)
    assert result.exit_code == 0, result.stderr
    assert CANARY not in result.stdout
    encrypted = secret_file.with_name("enc.yaml")
    encrypted.write_text(result.stdout)
    doc = _doc(result.stdout)
    # A manifest keeps its metadata readable: only data/stringData are encrypted.
    assert doc["metadata"]["name"] == "db"
    assert doc["stringData"]["password"].startswith(ENC)
    assert doc["sops"]["encrypted_regex"] == "^(data|stringData)$"
    back = run("decrypt", str(encrypted))
    assert back.exit_code == 0, back.stderr
    assert _doc(back.stdout) == _doc(SECRET_YAML)


def test_plain_config_gets_sops_default_suffix(work: Path, use_key: AgeKey) -> None:
    path = work / "app.yaml"
    path.write_text("token: abcdef\nport_unencrypted: 8080\n")
    doc = _doc(run("encrypt", str(path), "--age", use_key.public).stdout)
    assert doc["token"].startswith(ENC)
    assert doc["port_unencrypted"] == 8080
    assert doc["sops"]["unencrypted_suffix"] == "_unencrypted"


@pytest.mark.parametrize(
    ("flags", "encrypted", "clear"),
    [
        (("--encrypted-regex", "^pass"), ["password"], ["user", "port"]),
        (("--unencrypted-regex", "^(user|port)$"), ["password"], ["user", "port"]),
        (("--encrypted-suffix", "word"), ["password"], ["user", "port"]),
        (("--unencrypted-suffix", "ser"), ["password", "port"], ["user"]),
    ],
)
def test_rule_flags(
    work: Path, use_key: AgeKey, flags: tuple[str, ...], encrypted: list[str], clear: list[str]
) -> None:
    path = work / "c.yaml"
    path.write_text(f"password: {CANARY}\nuser: user-a1x\nport: 'p-5432-x'\n")
    result = run("encrypt", str(path), "--age", use_key.public, *flags)
    assert result.exit_code == 0, result.stderr
    doc = _doc(result.stdout)
    assert all(doc[k].startswith(ENC) for k in encrypted)
    assert all(not str(doc[k]).startswith(ENC) for k in clear)
    out = work / "c.enc.yaml"
    out.write_text(result.stdout)
    assert _doc(run("decrypt", str(out)).stdout)["password"] == CANARY


def test_mac_only_encrypted_keeps_kubernetes_default(secret_file: Path, use_key: AgeKey) -> None:
    result = run("encrypt", str(secret_file), "--age", use_key.public, "--mac-only-encrypted")
    doc = _doc(result.stdout)
    assert doc["sops"]["mac_only_encrypted"] is True
    assert doc["sops"]["encrypted_regex"] == "^(data|stringData)$"
    enc = secret_file.with_name("m.yaml")
    enc.write_text(result.stdout)
    assert _doc(run("decrypt", str(enc)).stdout) == _doc(SECRET_YAML)


def test_two_rule_flags_are_refused(secret_file: Path, use_key: AgeKey) -> None:
    result = run("encrypt", str(secret_file), "--age", use_key.public,
                 "--encrypted-regex", "a", "--unencrypted-suffix", "b")
    assert result.exit_code == 1
    assert "at most one" in result.stderr


def test_sops_yaml_found_above_the_file_first_rule_wins(
    work: Path, age_keys: list[AgeKey], use_key: AgeKey
) -> None:
    (work / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: prod/.*\\.yaml$\n    age: {age_keys[1].public}\n"
        f"  - path_regex: .*\\.yaml$\n    age: {age_keys[0].public}\n"
        "    encrypted_regex: ^stringData$\n"
    )
    (work / "prod" / "deep").mkdir(parents=True)
    prod = work / "prod" / "deep" / "s.yaml"
    prod.write_text(SECRET_YAML)
    dev = work / "dev.yaml"
    dev.write_text(SECRET_YAML)
    prod_doc = _doc(run("encrypt", str(prod)).stdout)
    dev_doc = _doc(run("encrypt", str(dev)).stdout)
    assert [s["recipient"] for s in prod_doc["sops"]["age"]] == [age_keys[1].public]
    assert [s["recipient"] for s in dev_doc["sops"]["age"]] == [age_keys[0].public]
    assert dev_doc["sops"]["encrypted_regex"] == "^stringData$"


def test_config_flag_overrides_and_key_groups_with_threshold(
    work: Path, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = work / "elsewhere.yaml"
    config.write_text(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
        + "".join(f"      - age:\n          - {k.public}\n" for k in age_keys)
    )
    (work / ".sops.yaml").write_text("creation_rules:\n  - age: age1nothing\n")
    path = work / "s.yaml"
    path.write_text(SECRET_YAML)
    result = run("encrypt", str(path), "--config", str(config), "-i")
    assert result.exit_code == 0, result.stderr
    meta = _doc(path.read_text())["sops"]
    assert meta["shamir_threshold"] == 2
    assert len(meta["key_groups"]) == 3
    # Any two of the three identities open it; one alone does not.
    two = work / "two.txt"
    two.write_text(age_keys[0].file.read_text() + age_keys[2].file.read_text())
    assert run("decrypt", str(path), "--age-identity", str(two)).exit_code == 0
    one = run("decrypt", str(path), "--age-identity", str(age_keys[1].file))
    assert one.exit_code == 128  # sops' CouldNotRetrieveKey
    assert one.stderr.startswith(f"error: {path}: ")


def test_no_recipients_is_a_clear_error(secret_file: Path) -> None:
    result = run("encrypt", str(secret_file))
    assert result.exit_code == 1
    assert result.stderr == f"error: {secret_file}: no recipients: give --age/--pgp/" \
        "--vault-transit (no .sops.yaml found)\n"


def test_already_encrypted_is_refused(secret_file: Path, use_key: AgeKey) -> None:
    encrypt_file(secret_file, use_key.public)
    before = secret_file.read_bytes()
    result = run("encrypt", str(secret_file), "--age", use_key.public, "-i")
    assert result.exit_code == 203  # sops' FileAlreadyEncrypted
    assert "already encrypted" in result.stderr
    assert secret_file.read_bytes() == before


@pytest.mark.parametrize("how", ["name", "input-type"])
def test_json(work: Path, use_key: AgeKey, how: str) -> None:
    path = work / ("s.json" if how == "name" else "s.data")
    path.write_text(json.dumps({"password": CANARY, "n": 1.5, "ok": True}))
    flags = ("--input-type", "json") if how == "input-type" else ()
    enc = run("encrypt", str(path), "--age", use_key.public, *flags)
    assert enc.exit_code == 0, enc.stderr
    assert json.loads(enc.stdout)["password"].startswith(ENC)
    path.write_text(enc.stdout)
    dec = run("decrypt", str(path), *flags)
    assert json.loads(dec.stdout) == {"password": CANARY, "n": 1.5, "ok": True}


def test_decrypt_output_type_json(secret_file: Path, use_key: AgeKey) -> None:
    encrypt_file(secret_file, use_key.public)
    result = run("decrypt", str(secret_file), "--output-type", "json")
    assert json.loads(result.stdout)["stringData"]["password"] == CANARY


def test_decrypt_stdin_extract_and_output_file(
    secret_file: Path, use_key: AgeKey, work: Path,
) -> None:
    encrypt_file(secret_file, use_key.public)
    data = secret_file.read_bytes()
    from_stdin = run("decrypt", "-", stdin=data)
    assert _doc(from_stdin.stdout) == _doc(SECRET_YAML)
    extracted = run("decrypt", str(secret_file), "--extract", '["stringData"]["password"]')
    assert extracted.stdout == CANARY
    out = work / "plain.yaml"
    assert run("decrypt", str(secret_file), "-w", str(out)).exit_code == 0
    assert _doc(out.read_text()) == _doc(SECRET_YAML)
    assert out.stat().st_mode & 0o777 == 0o600
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_in_place_and_output_exclude_each_other(secret_file: Path, use_key: AgeKey) -> None:
    result = run("encrypt", str(secret_file), "--age", use_key.public, "-i", "-w", "x.yaml")
    assert result.exit_code == 1
    assert "exclude" in result.stderr


def test_tampered_file_fails_unless_ignore_mac(secret_file: Path, use_key: AgeKey) -> None:
    encrypt_file(secret_file, use_key.public)
    text = secret_file.read_text().replace("name: db", "name: other")
    secret_file.write_text(text)
    result = run("decrypt", str(secret_file))
    assert result.exit_code == 51  # sops' MacMismatch
    assert "MAC" in result.stderr
    assert CANARY not in result.stderr
    recovered = run("decrypt", str(secret_file), "--ignore-mac")
    assert recovered.exit_code == 0
    assert _doc(recovered.stdout)["stringData"]["password"] == CANARY


def test_sops_decrypts_ours_and_we_decrypt_sops(
    secret_file: Path, use_key: AgeKey, sops: object, work: Path
) -> None:
    encrypt_file(secret_file, use_key.public)
    theirs = sops("decrypt", str(secret_file))  # type: ignore[operator]
    assert _doc(theirs.stdout.decode()) == _doc(SECRET_YAML)
    plain = work / "p.yaml"
    plain.write_text(SECRET_YAML)
    made = sops("encrypt", "--age", use_key.public, "--encrypted-regex",  # type: ignore[operator]
                "^(data|stringData)$", str(plain))
    by_sops = work / "by-sops.yaml"
    by_sops.write_bytes(made.stdout)
    assert _doc(run("decrypt", str(by_sops)).stdout) == _doc(SECRET_YAML)


def test_binary_backend_forced(
    secret_file: Path, use_key: AgeKey, sops_binary: str, work: Path,
) -> None:
    # A real process: keys/sops_binary registers every string of sops' output with the
    # process-wide redaction layer, which must not mask text in the other tests' messages.
    encrypt_file(secret_file, use_key.public)
    forced = {"SEALED_GITOPS_SOPS_BACKEND": "binary"}
    result = run_cli("decrypt", "secret.yaml", cwd=work, env=forced)
    assert result.returncode == 0, result.stderr
    assert _doc(result.stdout.decode()) == _doc(SECRET_YAML)
    # Identities given as flags reach sops too (through its variables, never a file).
    no_env = {**forced, "SOPS_AGE_KEY_FILE": ""}
    flagged = run_cli("decrypt", "secret.yaml", "--age-identity", str(use_key.file),
                      cwd=work, env=no_env)
    assert flagged.returncode == 0, flagged.stderr
    assert _doc(flagged.stdout.decode()) == _doc(SECRET_YAML)
    # With no key at all the error is sops' own, mapped to one line.
    failed = run_cli("decrypt", "secret.yaml", cwd=work, env=no_env)
    assert failed.returncode == 128  # sops' own status for "no key", passed on
    assert failed.stderr.decode().startswith("error: secret.yaml: sops")
    assert b"Traceback" not in failed.stderr


class _FakeSops:
    """Stands in for keys.sops_binary.SopsBinary (the project's own seam) to see the routing."""

    calls: ClassVar[list[dict[str, object]]] = []

    def __init__(self, *, env: dict[str, str]) -> None:
        self.env = env

    def decrypt(self, data: bytes, **kwargs: object) -> bytes:
        self.calls.append(kwargs)
        return b"from: sops\n"


def test_cloud_kms_only_files_go_to_sops(
    secret_file: Path, use_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealed_gitops.cli import sops_cmds

    encrypt_file(secret_file, use_key.public)
    # Replace the age stanza by a KMS one: nothing here can open it natively.
    kms = {"kms": [{"arn": "arn:aws:kms:eu-west-1:111122223333:key/x", "enc": "AQI=",
                    "created_at": "2024-01-01T00:00:00Z", "aws_profile": ""}]}
    data = yaml.safe_load(secret_file.read_text())
    data["sops"].pop("age")
    data["sops"] = {**kms, **data["sops"]}
    secret_file.write_text(yaml.safe_dump(data, sort_keys=False))
    _FakeSops.calls = []
    monkeypatch.setattr(sops_cmds, "SopsBinary", _FakeSops)
    result = run("decrypt", str(secret_file))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "from: sops\n"
    assert _FakeSops.calls == [
        {"fmt": "yaml", "output_fmt": "yaml", "filename": str(secret_file), "ignore_mac": False}
    ]


def test_encrypt_converts_yaml_to_json(secret_file: Path, use_key: AgeKey) -> None:
    result = run("encrypt", str(secret_file), "--age", use_key.public, "--output-type", "json",
                 "-w", "s.json")
    assert result.exit_code == 0, result.stderr
    out = secret_file.with_name("s.json")
    assert json.loads(out.read_text())["stringData"]["password"].startswith(ENC)
    assert json.loads(run("decrypt", str(out)).stdout) == _doc(SECRET_YAML)
    refused = run("encrypt", str(secret_file), "--age", use_key.public, "--output-type", "json",
                  "-i")
    assert refused.exit_code == 1
    assert "cannot change the format" in refused.stderr


def test_encrypt_stdin_uses_the_cwd_sops_yaml(work: Path, use_key: AgeKey) -> None:
    (work / ".sops.yaml").write_text(f"creation_rules:\n  - age: {use_key.public}\n")
    result = run("encrypt", "-", stdin=SECRET_YAML)
    assert result.exit_code == 0, result.stderr
    path = work / "from-stdin.yaml"
    path.write_text(result.stdout)
    assert _doc(run("decrypt", str(path)).stdout) == _doc(SECRET_YAML)
