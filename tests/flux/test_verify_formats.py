"""``verify`` and dotenv / INI / JSON files that the rules say must be encrypted (issue 12, Must 4).

The attack: a ``.sops.yaml`` rule says ``.env`` files are encrypted whole, yet ``app.env`` holds
``NEW_TOKEN=...`` in plaintext (never encrypted, or pasted into an encrypted file, or encrypted
under a weaker rule that ``keys fetch`` once put first). ``verify`` (the pre-commit hook) walked
only ``.yaml``/``.yml``/``.json`` and checked only Kubernetes Secrets, so it passed all of them.
Files are encrypted here by the real sops.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from tests.conftest_tools import AgeKey

CANARY = "canary-Vf8q2-token"

PLAIN = {
    "app.env": f"NEW_TOKEN={CANARY}\nPORT=5432\n",
    "app.ini": f"[db]\npassword = {CANARY}\nport = 5432\n",
    "app.json": f'{{"db": {{"password": "{CANARY}", "port": 5432}}}}\n',
}


def rules(recipient: str) -> str:
    return (
        "# the team's rules\n"
        "creation_rules:\n"
        f"  - path_regex: \\.env$\n    age: {recipient}\n"
        f"  - path_regex: \\.ini$\n    age: {recipient}\n"
        f"  - path_regex: \\.json$\n    age: {recipient}\n"
        "  - path_regex: \\.yaml$\n    encrypted_regex: ^(data|stringData)$\n"
        f"    age: {recipient}\n"
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]) -> Path:
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".sops.yaml").write_text(rules(age_keys[0].public))
    monkeypatch.chdir(work)
    return work


def verify(*args: str) -> Result:
    return CliRunner().invoke(cli, ["verify", *args], catch_exceptions=False)


def sops_encrypt(binary: str, env: dict[str, str], name: str, *extra: str) -> None:
    done = subprocess.run(
        [binary, *extra, "-e", "-i", name], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plaintext_file_a_rule_says_to_encrypt_fails(repo: Path, name: str) -> None:
    (repo / name).write_text(PLAIN[name])

    result = verify(".")

    assert result.exit_code == 1
    assert name in result.stderr
    assert "\\." in result.stderr and "path_regex" in result.stderr  # the rule is named
    assert CANARY not in result.output + result.stderr


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_files_encrypted_by_sops_pass(
    repo: Path, name: str, sops_binary: str, sops_env: dict[str, str], age_keys: list[AgeKey]
) -> None:
    (repo / name).write_text(PLAIN[name])
    sops_encrypt(sops_binary, sops_env, name)

    without_key = verify(name)
    assert without_key.exit_code == 0, without_key.stderr
    with_key = verify("--age-identity", str(age_keys[0].file), name)
    assert with_key.exit_code == 0, with_key.stderr


@pytest.mark.parametrize(
    ("name", "pasted", "key"),
    [
        ("app.env", f"PASTED={CANARY}\n", "PASTED"),
        ("app.ini", f"[extra]\npasted = {CANARY}\n", "extra.pasted"),
    ],
)
def test_plaintext_pasted_into_an_encrypted_file_fails(
    repo: Path, name: str, pasted: str, key: str, sops_binary: str, sops_env: dict[str, str]
) -> None:
    (repo / name).write_text(PLAIN[name])
    sops_encrypt(sops_binary, sops_env, name)
    with (repo / name).open("a") as out:
        out.write(pasted)

    result = verify(name)

    assert result.exit_code == 1
    assert name in result.stderr and key in result.stderr
    assert CANARY not in result.output + result.stderr


def test_dotenv_encrypted_under_the_weak_catch_all_rule_fails(
    repo: Path, sops_binary: str, sops_env: dict[str, str], age_keys: list[AgeKey]
) -> None:
    """What the old ``keys fetch`` led to: sops, with a catch-all manifest rule first, left
    ``NEW_TOKEN`` in plaintext beside a valid MAC. Against the repository's rules it fails."""
    weak = repo / "weak.sops.yaml"
    weak.write_text(
        "creation_rules:\n  - path_regex: .*\n    encrypted_regex: ^(data|stringData)$\n"
        f"    age: {age_keys[0].public}\n"
    )
    (repo / "app.env").write_text(PLAIN["app.env"])
    sops_encrypt(sops_binary, sops_env, "app.env", "--config", str(weak))
    assert CANARY.encode() in (repo / "app.env").read_bytes()  # sops did leave it in the clear
    weak.unlink()

    result = verify("--age-identity", str(age_keys[0].file), ".")

    assert result.exit_code == 1
    assert "app.env" in result.stderr and "NEW_TOKEN" in result.stderr
    assert CANARY not in result.output + result.stderr


def test_files_no_rule_asks_to_encrypt_pass(repo: Path) -> None:
    """No false alarm: a JSON Kubernetes manifest, and files no rule matches."""
    (repo / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: secrets/.*\\.json$\n    age: age1x\n"
        "  - path_regex: \\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: age1x\n"
    )
    (repo / "deploy.json").write_text('{"apiVersion": "apps/v1", "kind": "Deployment"}\n')
    (repo / "settings.json").write_text('{"level": "debug"}\n')
    (repo / "app.env").write_text("LEVEL=debug\n")
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\ndata: {level: debug}\n")

    result = verify(".")

    assert result.exit_code == 0, result.stderr
    assert "0 failed" in result.stderr
