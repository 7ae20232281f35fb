"""age post-quantum recipients (``age1pq1...``, ML-KEM-768 + X25519) against the real tools.

The references: Flux's own vector (a Secret sops 3.12.1 encrypted, and its key), the real ``age``
and ``age-keygen`` v1.3.2 and the real ``sops`` v3.12.2, both built from their Go modules by
``tests/flux/conftest_gotools.py``. Every interop test goes both ways: what they write opens with
ours, what we write opens with them.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto import age_format
from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient, parse_identity_text
from sealed_gitops.crypto.age_pq import PQIdentity, PQRecipient
from sealed_gitops.crypto.sops.document import decrypt_document
from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, FormatError
from sealed_gitops.keys.discovery import keyring_from_secret_data
from sealed_gitops.render.sops_sources import tree_to_python
from tests.conftest_tools import AgeKey
from tests.flux.conftest_gotools import (  # noqa: F401 - fixtures are found by name
    age_tool_fixture,
    run_tool,
    sops312_fixture,
)
from tests.flux.conftest_render import isolate_environment

FLUX = Path(__file__).parent.parent / "data" / "compat" / "flux"
CANARY = "canary-age-pq-9Kd3"
PLAIN = f"user: alice\npassword: {CANARY}\n"


@dataclass(frozen=True)
class PQKey:
    secret: str
    public: str
    file: Path


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key from the developer's environment; HOME and the cwd inside the test folder."""
    return isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def pq_key(age_tool: Path, tmp_path_factory: pytest.TempPathFactory) -> PQKey:
    """A post-quantum identity made by the real ``age-keygen -pq``."""
    path = tmp_path_factory.mktemp("pq") / "pq.txt"
    run_tool(age_tool / "age-keygen", ["-pq", "-o", str(path)])
    lines = path.read_text().splitlines()
    public = next(line.split(": ", 1)[1] for line in lines if line.startswith("# public key: "))
    secret = next(line for line in lines if line.startswith("AGE-SECRET-KEY-PQ-1"))
    return PQKey(secret, public, path)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sops(binary: Path, args: list[str], *, cwd: Path, key_file: Path | None = None) -> bytes:
    env = {"SOPS_AGE_KEY_FILE": str(key_file)} if key_file else {}
    return run_tool(binary, args, cwd=cwd, env=env).stdout


def recipients_of(text: str) -> list[str]:
    return [s["recipient"] for s in yaml.safe_load(text)["sops"]["age"]]


# --- Flux's vector -------------------------------------------------------------------------------


def test_flux_vector_decrypts_with_its_key(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(FLUX / "age-pq.txt"))
    result = run("decrypt", str(FLUX / "age-pq.yaml"))
    assert result.exit_code == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert secret["metadata"]["name"] == "age-pq"
    assert secret["stringData"] == {"key": "value"}  # what Flux's test expects


def test_flux_vector_through_a_decryption_secret_with_other_keys(age_keys: list[AgeKey]) -> None:
    """As Flux's controller test: the Secret holds age.agekey and age-pq.agekey entries."""
    data = {
        "age.agekey": f"{age_keys[0].secret}\n".encode(),
        "age-pq.agekey": (FLUX / "age-pq.txt").read_bytes(),
    }
    with keyring_from_secret_data(data) as ring:
        doc = decrypt_document(
            (FLUX / "age-pq.yaml").read_bytes(), unwrapper=ring, file="age-pq.yaml"
        )
    assert tree_to_python(doc.branches[0])["stringData"] == {"key": "value"}


def test_flux_algorithms_layout_builds(isolated_env: Path) -> None:
    """Flux's algorithms/ kustomization (namePrefix algo-) over the PQ file, through build."""
    (isolated_env / "age-pq.yaml").write_bytes((FLUX / "age-pq.yaml").read_bytes())
    write(isolated_env / "kustomization.yaml", "namePrefix: algo-\nresources:\n- age-pq.yaml\n")
    result = run(
        "build", str(isolated_env), "--show-secrets", "--age-identity", str(FLUX / "age-pq.txt")
    )
    assert result.exit_code == 0, result.stderr
    (secret,) = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "algo-age-pq"
    values = secret.get("stringData") or {
        k: base64.b64decode(v).decode() for k, v in secret["data"].items()
    }
    assert values == {"key": "value"}


# --- both ways with the real sops 3.12 and age ---------------------------------------------------


def test_sops312_file_for_pq_recipient_opens_with_ours(
    sops312: Path, pq_key: PQKey, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(isolated_env / "plain.yaml", PLAIN)
    enc = sops(sops312, ["encrypt", "--age", pq_key.public, str(path)], cwd=isolated_env)
    assert CANARY.encode() not in enc and b"mlkem768x25519" not in enc  # armored
    target = isolated_env / "by-sops.yaml"
    target.write_bytes(enc)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(pq_key.file))
    result = run("decrypt", str(target))
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout) == yaml.safe_load(PLAIN)


def test_ours_for_pq_recipient_opens_with_sops312_and_age(
    sops312: Path, age_tool: Path, pq_key: PQKey, isolated_env: Path
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    result = run("encrypt", str(path), "--age", pq_key.public)
    assert result.exit_code == 0, result.stderr
    enc = write(isolated_env / "ours.yaml", result.stdout)
    assert recipients_of(result.stdout) == [pq_key.public]
    out = sops(sops312, ["decrypt", str(enc)], cwd=isolated_env, key_file=pq_key.file)
    assert yaml.safe_load(out) == yaml.safe_load(PLAIN)
    # The data-key stanza on its own is an age file the real age opens (32 bytes: the data key).
    armored = write(
        isolated_env / "stanza.age", yaml.safe_load(result.stdout)["sops"]["age"][0]["enc"]
    )
    data_key = run_tool(age_tool / "age", ["-d", "-i", str(pq_key.file), str(armored)]).stdout
    assert len(data_key) == 32


def test_mixed_x25519_and_pq_file_from_sops312_opens_with_either_key(
    sops312: Path, pq_key: PQKey, age_keys: list[AgeKey], isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write(isolated_env / "plain.yaml", PLAIN)
    both = f"{age_keys[0].public},{pq_key.public}"
    target = isolated_env / "mixed.yaml"
    target.write_bytes(sops(sops312, ["encrypt", "--age", both, str(path)], cwd=isolated_env))
    for key_file in (pq_key.file, age_keys[0].file):
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
        result = run("decrypt", str(target))
        assert result.exit_code == 0, result.stderr
        assert CANARY in result.stdout


def test_pq_identity_beside_x25519_ones_in_a_keys_file_is_used(
    sops312: Path, pq_key: PQKey, age_keys: list[AgeKey], isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    path = write(isolated_env / "plain.yaml", PLAIN)
    target = isolated_env / "pq-only.yaml"
    target.write_bytes(
        sops(sops312, ["encrypt", "--age", pq_key.public, str(path)], cwd=isolated_env)
    )
    keys = write(
        isolated_env.parent / "keys.txt",
        f"# public key: {age_keys[0].public}\n{age_keys[0].secret}\n\n"
        f"{pq_key.file.read_text()}\n{age_keys[1].secret}\n",
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys))
    with caplog.at_level(logging.INFO):
        result = run("decrypt", str(target))
    assert result.exit_code == 0, result.stderr
    assert CANARY in result.stdout
    assert "skipped" not in caplog.text  # the PQ line is a key, not a note
    parsed = parse_identity_text(keys.read_text())
    assert [public for public, _ in parsed.keys] == [
        age_keys[0].public, pq_key.public, age_keys[1].public,
    ]  # fmt: skip


def test_sops_age_recipients_with_pq(
    sops312: Path, pq_key: PQKey, age_keys: list[AgeKey], isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write(isolated_env / "app.yaml", PLAIN)
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", f"{pq_key.public},{age_keys[0].public}")
    result = run("encrypt", str(path))
    assert result.exit_code == 0, result.stderr
    assert recipients_of(result.stdout) == [pq_key.public, age_keys[0].public]
    enc = write(isolated_env / "enc.yaml", result.stdout)
    out = sops(sops312, ["decrypt", str(enc)], cwd=isolated_env, key_file=pq_key.file)
    assert CANARY.encode() in out


def test_sops_yaml_rule_with_pq_and_updatekeys_rotate_keep_it(
    sops312: Path, pq_key: PQKey, age_keys: list[AgeKey], isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = write(isolated_env / ".sops.yaml", f"creation_rules:\n  - age: {pq_key.public}\n")
    path = write(isolated_env / "app.yaml", PLAIN)
    result = run("encrypt", "-i", str(path))
    assert result.exit_code == 0, result.stderr
    assert recipients_of(path.read_text()) == [pq_key.public]
    assert CANARY.encode() in sops(sops312, ["decrypt", str(path)], cwd=isolated_env,
                                   key_file=pq_key.file)  # fmt: skip

    # updatekeys: the rule gains an X25519 recipient; the PQ stanza stays, the new one is added.
    config.write_text(f"creation_rules:\n  - age: {pq_key.public},{age_keys[0].public}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(pq_key.file))
    result = run("updatekeys", "-y", str(path))
    assert result.exit_code == 0, result.stderr
    assert recipients_of(path.read_text()) == [pq_key.public, age_keys[0].public]
    for key_file in (pq_key.file, age_keys[0].file):
        out = sops(sops312, ["decrypt", str(path)], cwd=isolated_env, key_file=key_file)
        assert CANARY.encode() in out

    # rotate: a new data key, re-wrapped for the same recipients, the PQ one included.
    before = yaml.safe_load(path.read_text())["sops"]["age"][0]["enc"]
    result = run("rotate", "-i", str(path))
    assert result.exit_code == 0, result.stderr
    after = yaml.safe_load(path.read_text())["sops"]
    assert [s["recipient"] for s in after["age"]] == [pq_key.public, age_keys[0].public]
    assert after["age"][0]["enc"] != before
    out = sops(sops312, ["decrypt", str(path)], cwd=isolated_env, key_file=pq_key.file)
    assert CANARY.encode() in out


def test_rotate_add_and_remove_a_pq_recipient(
    sops312: Path, pq_key: PQKey, age_keys: list[AgeKey], isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = write(isolated_env / "app.yaml", PLAIN)
    write(path, run("encrypt", str(path), "--age", age_keys[0].public).stdout)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys[0].file))
    assert run("rotate", "-i", "--add-age", pq_key.public, str(path)).exit_code == 0
    assert recipients_of(path.read_text()) == [age_keys[0].public, pq_key.public]
    out = sops(sops312, ["decrypt", str(path)], cwd=isolated_env, key_file=pq_key.file)
    assert CANARY.encode() in out
    assert run("rotate", "-i", "--rm-age", pq_key.public, str(path)).exit_code == 0
    assert recipients_of(path.read_text()) == [age_keys[0].public]


# --- failures ------------------------------------------------------------------------------------


def _tamper(armored: str, how: str) -> str:
    """The armored age file with one part changed; the stanza is line 2 (args) and 3 (body)."""
    data = age_format.dearmor(armored)
    intro, stanza, body, footer, payload = data.split(b"\n", 4)
    if how == "stanza body":
        raw = bytearray(age_format.b64decode_raw(body.decode()))
        raw[0] ^= 1
        body = age_format.b64encode_raw(bytes(raw)).encode()
    elif how == "encapsulated key":
        words = stanza.split(b" ")
        enc = bytearray(age_format.b64decode_raw(words[2].decode()))
        enc[5] ^= 1
        stanza = b" ".join([*words[:2], age_format.b64encode_raw(bytes(enc)).encode()])
    elif how == "header MAC":
        mac = bytearray(age_format.b64decode_raw(footer.split(b" ")[1].decode()))
        mac[0] ^= 1
        footer = b"--- " + age_format.b64encode_raw(bytes(mac)).encode()
    elif how == "payload":
        payload = payload[:-1] + bytes([payload[-1] ^ 1])
    elif how == "stanza type":
        stanza = stanza.replace(b"mlkem768x25519", b"mlkem768x25518")
    return age_format.armor(b"\n".join([intro, stanza, body, footer, payload]))


@pytest.mark.parametrize(
    "how", ["stanza body", "encapsulated key", "header MAC", "payload", "stanza type"]
)
def test_tampered_pq_stanza_fails_clearly(
    pq_key: PQKey, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    path = write(isolated_env / "app.yaml", PLAIN)
    doc = yaml.safe_load(run("encrypt", str(path), "--age", pq_key.public).stdout)
    enc = doc["sops"]["age"][0]["enc"]
    identities = AgeIdentities.from_text(pq_key.secret)
    data_key = identities.unwrap(KeyStanza("age", doc["sops"]["age"][0]))
    assert data_key is not None
    doc["sops"]["age"][0]["enc"] = _tamper(enc, how)
    target = write(isolated_env / "tampered.yaml", yaml.safe_dump(doc))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(pq_key.file))
    result = CliRunner().invoke(cli, ["decrypt", str(target)])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = result.stderr
    # One line naming the file, what failed and the key (shortened)
    assert "Traceback" not in message and len(message.strip().splitlines()) == 1
    assert "tampered.yaml" in message
    assert "does not decrypt with its recipient's key" in message
    assert f"[key {pq_key.public[:24]}..." in message
    for secret in (pq_key.secret, CANARY, data_key.hex(), base64.b64encode(data_key).decode()):
        assert secret not in message + result.stdout


def test_malformed_pq_identity_line_names_the_line_not_the_key(isolated_env: Path) -> None:
    good = PQIdentity.generate().secret_text()
    broken = good[:-1] + ("Q" if good[-1] != "Q" else "P")  # checksum no longer matches
    with pytest.raises(ConfigError) as caught:
        parse_identity_text(f"# a comment\n{broken}\n")
    assert "line 2" in str(caught.value) and "post-quantum" in str(caught.value)
    assert broken not in str(caught.value) and good not in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    [
        "age1pq1" + "q" * 1900,  # checksum wrong
        str(PQRecipient(bytes(1216))).replace("age1pq1", "age1pq1q", 1),  # one character more
    ],
)
def test_invalid_pq_recipient_is_a_config_error(bad: str, isolated_env: Path) -> None:
    with pytest.raises(ConfigError, match="invalid age recipient"):
        AgeRecipient(bad)
    path = write(isolated_env / "app.yaml", PLAIN)
    result = CliRunner().invoke(cli, ["encrypt", str(path), "--age", bad])
    assert result.exit_code != 0 and "Traceback" not in result.stderr


# --- the format itself ---------------------------------------------------------------------------

_IDENTITY = PQIdentity.generate()
_RECIPIENT = AgeRecipient(_IDENTITY.to_public())
_HOLDER = AgeIdentities([_IDENTITY])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data_key=st.binary(min_size=32, max_size=32))
def test_pq_wrap_unwrap_round_trip(data_key: bytes) -> None:
    stanza = _RECIPIENT.wrap(data_key)
    assert stanza.data["recipient"] == _IDENTITY.to_public()
    assert _HOLDER.unwrap(stanza) == data_key
    # Someone else's PQ key is "not ours" for an anonymous stanza, never a wrong key.
    other = AgeIdentities([PQIdentity.generate()])
    assert other.unwrap(KeyStanza("age", {"enc": stanza.enc})) is None


def test_identity_text_round_trips_and_is_never_in_repr() -> None:
    again = PQIdentity.parse(_IDENTITY.secret_text())
    assert again.to_public() == _IDENTITY.to_public()
    assert _IDENTITY.secret_text() not in repr(_IDENTITY)
    assert len(_IDENTITY.to_public()) == 1959 and len(_IDENTITY.secret_text()) == 77


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 3 * 65536])
def test_age_files_of_chunk_edge_sizes_both_ways(
    age_tool: Path, pq_key: PQKey, isolated_env: Path, size: int
) -> None:
    """The STREAM payload at its edges (empty, one full chunk, a full chunk plus one byte)."""
    plain = bytes(range(256)) * (size // 256) + bytes(size % 256)
    identity = PQIdentity.parse(pq_key.secret)
    ours = isolated_env / "ours.age"
    ours.write_bytes(age_format.encrypt(plain, [PQRecipient.parse(pq_key.public).wrap]))
    assert run_tool(age_tool / "age", ["-d", "-i", str(pq_key.file), str(ours)]).stdout == plain
    theirs = run_tool(age_tool / "age", ["-r", pq_key.public], input=plain).stdout
    assert age_format.decrypt(theirs, identity.unwrap) == plain
    armored = run_tool(age_tool / "age", ["-a", "-r", pq_key.public], input=plain).stdout
    assert age_format.decrypt(age_format.dearmor(armored.decode()), identity.unwrap) == plain


def test_a_huge_header_costs_little_and_is_refused() -> None:
    """A stanza body of 3 MiB (age's header limit is 2 MiB): refused in well under a second,
    without quadratic copying."""
    line = b"A" * 64 + b"\n"
    data = b"age-encryption.org/v1\n-> mlkem768x25519 AAAA\n" + line * (3 * 2**20 // 65)
    started = time.perf_counter()
    with pytest.raises(FormatError, match="oversized"):
        age_format.decrypt(data + b"AA\n--- " + b"A" * 43 + b"\n", _IDENTITY.unwrap)
    assert time.perf_counter() - started < 2


def test_a_hostile_long_pq_recipient_is_refused_at_once() -> None:
    """A recipient from a committer's .sops.yaml reaches the bech32 checksum loop: one of two
    million characters (a real one has ~1,960) must be refused before it costs CPU time."""
    started = time.process_time()
    with pytest.raises(ConfigError):
        AgeRecipient("age1pq1" + "q" * 2_000_000)
    assert time.process_time() - started < 1.0
