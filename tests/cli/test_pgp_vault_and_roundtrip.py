"""The CLI with PGP (real gpg) and Vault transit (a real OpenBao server), and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest_tools import PgpKey, Transit

from .conftest import SECRET_YAML, AgeKey, run


def _doc(text: str) -> object:
    return yaml.safe_load(text)


def test_pgp_encrypt_decrypt_and_sops_interop(
    secret_file: Path, pgp_key: PgpKey, sops: object, work: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = str(pgp_key.home.path)
    enc = run("encrypt", str(secret_file), "--pgp", pgp_key.fingerprint, "--gnupghome", home,
              "-w", "pgp.yaml")
    assert enc.exit_code == 0, enc.stderr
    meta = yaml.safe_load((work / "pgp.yaml").read_text())["sops"]
    assert meta["pgp"][0]["fp"].upper() == pgp_key.fingerprint.upper()
    dec = run("decrypt", "pgp.yaml", "--gnupghome", home)
    assert dec.exit_code == 0, dec.stderr
    assert _doc(dec.stdout) == _doc(SECRET_YAML)
    monkeypatch.setenv("GNUPGHOME", home)
    theirs = sops("decrypt", "pgp.yaml")  # type: ignore[operator]
    assert _doc(theirs.stdout.decode()) == _doc(SECRET_YAML)


def test_vault_transit_from_creation_rule(
    secret_file: Path, transit: Transit, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / ".sops.yaml").write_text(
        f"creation_rules:\n  - hc_vault_transit_uri: {transit.uri}\n"
    )
    monkeypatch.setenv("VAULT_TOKEN", transit.server.token)
    monkeypatch.setenv("VAULT_ADDR", transit.server.address)  # where the token may go
    enc = run("encrypt", str(secret_file), "-i")
    assert enc.exit_code == 0, enc.stderr
    assert "hc_vault" in yaml.safe_load(secret_file.read_text())["sops"]
    dec = run("decrypt", str(secret_file))
    assert dec.exit_code == 0, dec.stderr
    assert _doc(dec.stdout) == _doc(SECRET_YAML)
    # A wrong token is a one-line provider error naming the file.
    monkeypatch.delenv("VAULT_TOKEN")
    bad = run("decrypt", str(secret_file), "--vault-token", "not-a-valid-token")
    assert bad.exit_code == 128  # sops' CouldNotRetrieveKey
    assert bad.stderr.startswith(f"error: {secret_file}: ")
    assert "not-a-valid-token" not in bad.stderr


def test_vault_transit_flag_in_place_and_sops_decrypts(
    secret_file: Path, transit: Transit, sops: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The URI sops takes, here with an engine path that has slashes (team/a/transit).
    monkeypatch.setenv("VAULT_TOKEN", transit.server.token)
    monkeypatch.setenv("VAULT_ADDR", transit.server.address)  # where the token may go
    enc = run("encrypt", str(secret_file), "--vault-transit", transit.nested_uri, "--in-place")
    assert enc.exit_code == 0, enc.stderr
    assert enc.stdout == ""
    stanza = yaml.safe_load(secret_file.read_text())["sops"]["hc_vault"][0]
    assert stanza["vault_address"] == transit.server.address
    assert (stanza["engine_path"], stanza["key_name"]) == ("team/a/transit", "second")
    assert stanza["enc"].startswith("vault:v1:")
    dec = run("decrypt", str(secret_file))
    assert dec.exit_code == 0, dec.stderr
    assert _doc(dec.stdout) == _doc(SECRET_YAML)
    theirs = sops("decrypt", str(secret_file))  # type: ignore[operator]
    assert _doc(theirs.stdout.decode()) == _doc(SECRET_YAML)


# Values carry a fixed prefix so the redaction registry (process-wide) cannot mask paths that
# later tests print.
_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40
).map(lambda t: "hv-" + t)
_documents = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), _values | st.integers(-1000, 1000)
    | st.booleans(), min_size=1, max_size=6,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents, fmt=st.sampled_from(["yaml", "json"]))
def test_round_trip_property(work: Path, age_keys: list[AgeKey], document: dict[str, object],
                             fmt: str) -> None:
    path = work / f"doc.{fmt}"
    text = json.dumps(document) if fmt == "json" else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    enc = run("encrypt", str(path), "--age", age_keys[0].public, "-i")
    assert enc.exit_code == 0, enc.stderr
    dec = run("decrypt", str(path), "--age-identity", str(age_keys[0].file))
    assert dec.exit_code == 0, dec.stderr
    loaded = json.loads(dec.stdout) if fmt == "json" else yaml.safe_load(dec.stdout)
    assert loaded == document
