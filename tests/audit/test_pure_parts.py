"""The pure parts of the audit: key paths, snapshots, the record type, the value merge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.audit import (
    ROW_FIELDS,
    Change,
    ChangeRecord,
    KeyedHasher,
    SignatureStatus,
    audit_history,
    masked_text,
    merge_sops,
)
from sealed_gitops.audit.history import parse_log
from sealed_gitops.audit.snapshot import format_key, read_snapshot
from sealed_gitops.crypto.sops import decrypt_document, encrypt_bytes, parse_path, set_value
from sealed_gitops.keys.keyring import KeyRing

from .conftest import AgeKeys, History, leaked

keys = st.one_of(st.text(min_size=1, max_size=12), st.integers(min_value=0, max_value=99))


@given(st.lists(keys, min_size=1, max_size=5))
def test_key_paths_round_trip_through_sops_path_syntax(path: list[str | int]) -> None:
    assert parse_path(format_key(tuple(path))) == path


def test_record_json_has_exactly_the_fields() -> None:
    record = ChangeRecord(
        commit="a" * 40, date="2026-01-01T00:00:00+00:00", author="A <a@x>", committer="A <a@x>",
        signature=SignatureStatus.NONE, signer=None, file="f.yaml", object="Secret/ns/n",
        key='["data"]["k"]', change=Change.RE_ENCRYPTED,
    )
    assert tuple(record.to_json()) == ROW_FIELDS
    assert record.to_json()["change"] == "re-encrypted"


@pytest.mark.parametrize(
    ("name", "data", "objects"),
    [
        ("plain.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", 0),
        ("broken.yaml", b"sops: [unclosed\n", 0),
        ("notes.txt", b"sops: {}\n", 0),
    ],
)
def test_files_that_are_not_encrypted_give_empty_snapshots(
    name: str, data: bytes, objects: int
) -> None:
    assert len(read_snapshot(data, file=name).objects) == objects


def test_a_sops_file_that_is_not_a_manifest_has_no_object(age_keys: AgeKeys) -> None:
    data = encrypt_bytes(b"db:\n  password: CANARY-7f3a-p\n  hosts: [a, b]\n",
                         key_groups=[[age_keys.recipients[0]]], file="app.yaml")
    snapshot = read_snapshot(data, file="app.yaml")
    assert [o.label for o in snapshot.objects] == [None]
    assert set(snapshot.objects[0].values) == {
        '["db"]["password"]', '["db"]["hosts"][0]', '["db"]["hosts"][1]'}


def test_textconv_masks_values_and_keeps_plain_files(age_keys: AgeKeys) -> None:
    data = encrypt_bytes(b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
                         b"stringData:\n  k: CANARY-7f3a-k\n",
                         key_groups=[[age_keys.recipients[0]]], file="s.yaml")
    shown = masked_text(data, file="s.yaml")
    assert b"k: <encrypted sha256:" in shown
    assert b"ENC[" not in shown and b"mac" not in shown and not leaked(shown)
    plain = b"a: 1\n"
    assert masked_text(plain, file="p.yaml") == plain


def test_parse_log_groups_merge_parents_and_reads_renames() -> None:
    header = "\x1e" + "\x1f".join(["c" * 40, "p1 p2", "A <a@x>", "2026-01-01T00:00:00+00:00",
                                   "A <a@x>", "G", "F" * 40, ""]) + "\x00\n"
    raw1 = f":100644 100644 {'1' * 40} {'2' * 40} R090\x00old.yaml\x00new.yaml\x00"
    raw2 = f":160000 160000 {'3' * 40} {'4' * 40} M\x00sub\x00"
    commits = parse_log(header + raw1 + header + raw2)
    assert len(commits) == 1
    commit = commits[0]
    assert commit.signature is SignatureStatus.GOOD and commit.signer == "F" * 40
    assert commit.diffs[0][0].old_path == "old.yaml" and commit.diffs[0][0].new_path == "new.yaml"
    assert commit.diffs[1][0].new_blob is None  # a submodule is not a file


def test_undecryptable_versions_are_compared_by_ciphertext_and_noted(history: History) -> None:
    result = audit_history(history.repo.path, judge=KeyedHasher(sops=KeyRing()))
    assert any("could not be decrypted" in n for n in result.notices)
    plain = audit_history(history.repo.path)
    assert [r.change for r in result.records] == [r.change for r in plain.records]


values = st.text(alphabet="abcdef", min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(
    base=st.dictionaries(st.sampled_from("pqrstu"), values, min_size=1, max_size=6),
    ours_edits=st.dictionaries(st.sampled_from("pqr"), values, max_size=3),
    theirs_edits=st.dictionaries(st.sampled_from("stu"), values, max_size=3),
)
def test_merging_disjoint_edits_gives_both(
    age_keys: AgeKeys, base: dict[str, str], ours_edits: dict[str, str],
    theirs_edits: dict[str, str],
) -> None:
    doc = "stringData:\n" + "".join(f"  {k}: {v}\n" for k, v in base.items())
    original = encrypt_bytes(
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n" + doc.encode(),
        key_groups=[[age_keys.recipients[0]]], file="s.yaml",
    )

    def edit(edits: dict[str, str]) -> bytes:
        data = original
        for key, value in edits.items():
            data = set_value(data, f'["stringData"]["{key}"]', f'"{value}"',
                             unwrapper=age_keys.unwrapper, file="s.yaml")
        return data

    merged = merge_sops(original, edit(ours_edits), edit(theirs_edits),
                        unwrapper=age_keys.unwrapper, file="s.yaml")
    result = decrypt_document(merged, unwrapper=age_keys.unwrapper, file="s.yaml")
    assert dict(result.branches[0].get("stringData")) == {**base, **ours_edits, **theirs_edits}


def test_keyed_hashes_use_a_fresh_key_per_run_and_show_nothing(age_keys: AgeKeys) -> None:
    plain = (
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\n"
        b'stringData:\n  k: "CANARY-7f3a-keyed"\n'
    )
    one = encrypt_bytes(plain, key_groups=[[age_keys.recipients[0]]], file="s.yaml")
    again = encrypt_bytes(plain, key_groups=[[age_keys.recipients[0]]], file="s.yaml")
    run = KeyedHasher(sops=age_keys.unwrapper)
    first = run.hashes(blob="1" * 40, file="s.yaml", data=one)
    second = run.hashes(blob="2" * 40, file="s.yaml", data=again)
    other_run = KeyedHasher(sops=age_keys.unwrapper).hashes(blob="1" * 40, file="s.yaml", data=one)
    assert first is not None and second is not None and other_run is not None
    key = (0, '["stringData"]["k"]')
    # same plaintext, new ciphertext: equal within one run, so a re-encryption is recognised
    assert first[key] == second[key]
    # a hash of another run (another random key) matches nothing: no dictionary to build
    assert other_run[key] != first[key]
    assert not leaked(repr(run)) and "_key" not in repr(run)
