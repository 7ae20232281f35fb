"""The audit of a generated history: one row per change of one value, classified honestly."""

from __future__ import annotations

from collections import Counter

import pytest

from sealed_gitops.audit import Change, ChangeRecord, KeyedHasher, audit_history, parse_date
from sealed_gitops.crypto.sealing_keys import load_private_keys
from sealed_gitops.keys.sealing import SealingKeyring

from .conftest import History

PASSWORD = '["stringData"]["password"]'
USER = '["stringData"]["user"]'


def _rows(records: list[ChangeRecord], commit: str) -> set[tuple[str, str | None, str | None, str]]:
    return {
        (r.file, r.object, r.key, r.change.value) for r in records if r.commit == commit
    }


@pytest.fixture(scope="module")
def plain_audit(history: History) -> list[ChangeRecord]:
    return audit_history(history.repo.path).records


@pytest.fixture(scope="module")
def keyed_audit(history: History) -> list[ChangeRecord]:
    sealing = SealingKeyring(
        load_private_keys(history.sealing_key_file.read_bytes(), source="test")
    )
    judge = KeyedHasher(sops=history.keys.unwrapper, sealing=sealing)
    result = audit_history(history.repo.path, judge=judge)
    assert not judge.failures
    return result.records


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("add-db", {("db.yaml", "Secret/app/db", PASSWORD, "added"),
                    ("db.yaml", "Secret/app/db", USER, "added")}),
        ("bob-password", {("db.yaml", "Secret/app/db", PASSWORD, "changed")}),
        # engine updatekeys: the data key re-wrapped, no value touched
        ("updatekeys", {("db.yaml", "Secret/app/db", None, "recipients-changed")}),
        # git mv: nothing changed, nothing reported
        ("rename", set()),
        ("add-bundle", {("bundle.yaml", "Secret/app/api", '["stringData"]["token"]', "added"),
                        ("bundle.yaml", "Secret/app/cache", '["stringData"]["url"]', "added")}),
        # the real sops: only the value that was set
        ("sops-set", {("secrets-db.yaml", "Secret/app/db", PASSWORD, "changed")}),
        ("sops-updatekeys", {("secrets-db.yaml", "Secret/app/db", None, "recipients-changed")}),
        ("sealed-rename", set()),
        ("feature", {("bundle.yaml", "Secret/app/api", '["stringData"]["flag"]', "added")}),
        ("main-side", {("cache.yaml", "Secret/app/cache", USER, "added")}),
        # the merge decided nothing of its own
        ("merge", set()),
    ],
)
@pytest.mark.parametrize("mode", ["ciphertext", "keyed"])
def test_rows_per_step(
    history: History,
    *,
    plain_audit: list[ChangeRecord],
    keyed_audit: list[ChangeRecord],
    step: str,
    expected: set[tuple[str, str | None, str | None, str]],
    mode: str,
) -> None:
    records = plain_audit if mode == "ciphertext" else keyed_audit
    assert _rows(records, history.commits[step]) == expected


@pytest.mark.parametrize(
    ("step", "without_keys", "with_keys"),
    [
        # a new data key re-encrypts every value: only keys can prove the values are the same
        ("rotate", "changed", "re-encrypted"),
        # a reseal rewrites every sealed value
        ("reseal", "changed", "re-encrypted"),
        # moving an object into another SOPS file re-encrypts it under that file's data key
        ("move-object", "changed", "re-encrypted"),
    ],
)
def test_reencryption_needs_keys_to_be_told_apart(
    history: History,
    *,
    plain_audit: list[ChangeRecord],
    keyed_audit: list[ChangeRecord],
    step: str,
    without_keys: str,
    with_keys: str,
) -> None:
    commit = history.commits[step]
    plain = {r.change.value for r in plain_audit if r.commit == commit and r.key}
    keyed = {r.change.value for r in keyed_audit if r.commit == commit and r.key}
    assert plain == {without_keys}
    assert keyed == {with_keys}


def test_object_moved_between_files_is_not_removed_and_added(
    history: History, plain_audit: list[ChangeRecord]
) -> None:
    rows = [r for r in plain_audit if r.commit == history.commits["move-object"]]
    cache = [r for r in rows if r.object == "Secret/app/cache"]
    assert cache and all(r.file == "cache.yaml" for r in cache)
    assert not {r.change for r in rows} & {Change.ADDED, Change.REMOVED}


def test_rotation_without_keys_is_explained(history: History) -> None:
    result = audit_history(history.repo.path)
    # bundle.yaml and cache.yaml (the move re-encrypted both), then cache.yaml's rotation
    assert any(n.startswith("3 object(s)") and "--decrypt" in n for n in result.notices)


def test_key_rotations_are_never_value_changes(
    history: History, plain_audit: list[ChangeRecord]
) -> None:
    for step in ("updatekeys", "sops-updatekeys"):
        changes = Counter(r.change for r in plain_audit if r.commit == history.commits[step])
        assert changes == Counter({Change.RECIPIENTS_CHANGED: 1})


@pytest.mark.parametrize(
    ("step", "author"),
    [
        ("add-db", "Alice <alice@example.invalid>"),
        ("bob-password", "Bob <bob@example.invalid>"),
        ("sops-set", "Erin <erin@example.invalid>"),
        ("reseal", "Grace <grace@example.invalid>"),
    ],
)
def test_people_and_dates(
    history: History, plain_audit: list[ChangeRecord], step: str, author: str
) -> None:
    rows = [r for r in plain_audit if r.commit == history.commits[step]]
    assert rows
    assert {r.author for r in rows} == {author}
    assert {r.committer for r in rows} == {author}
    day = parse_date(rows[0].date).day
    assert all(parse_date(r.date).day == day for r in rows)


@pytest.mark.parametrize(
    ("since", "until", "steps"),
    [
        ("2026-01-02", "2026-01-02T23:59:59", {"bob-password"}),
        ("2026-01-14", None, {"main-side"}),
        (None, "2026-01-01T12:00:00Z", {"add-db"}),
        ("2026-01-03", "2026-01-04", {"updatekeys"}),
    ],
)
def test_since_and_until(
    history: History, since: str | None, until: str | None, steps: set[str]
) -> None:
    result = audit_history(
        history.repo.path,
        since=parse_date(since) if since else None,
        until=parse_date(until) if until else None,
    )
    names = {name for name, sha in history.commits.items() if sha in {r.commit for r in
                                                                       result.records}}
    assert names == steps


@pytest.mark.parametrize(
    ("object_filter", "expected_steps"),
    [
        ("Secret/app/db", {"add-db", "bob-password", "updatekeys", "sops-set",
                           "sops-updatekeys"}),
        ("SealedSecret/app/api-key", {"add-sealed", "reseal"}),
        ("Secret/app/cache", {"add-bundle", "move-object", "rotate", "main-side"}),
        ("Secret/other/none", set()),
    ],
)
def test_object_filter(history: History, object_filter: str, expected_steps: set[str]) -> None:
    records = audit_history(history.repo.path, object_filter=object_filter).records
    assert {r.object for r in records} <= {object_filter}
    steps = {name for name, sha in history.commits.items() if sha in {r.commit for r in records}}
    assert steps == expected_steps


def test_path_limits_the_audit(history: History) -> None:
    records = audit_history(history.repo.path / "sealed").records
    assert records
    assert {r.object for r in records} == {"SealedSecret/app/api-key"}


def test_a_single_file_is_followed_through_its_rename(history: History) -> None:
    records = audit_history(history.repo.path / "secrets-db.yaml").records
    steps = {name for name, sha in history.commits.items() if sha in {r.commit for r in records}}
    assert {"add-db", "bob-password", "updatekeys", "sops-set"} <= steps
    assert {r.file for r in records} == {"db.yaml", "secrets-db.yaml"}
