"""``keys retire`` decides from what the cluster applies, through the operator (issue 15, Must 4).

The story of the issue: ``reencrypt`` rewrote the files in the working tree, nobody committed and
pushed them, ``keys retire`` looked at the working tree and retired the key, and the next
reconcile of the published revision failed with DecryptionFailed. Here the operator records in
each Sync's ``status.decryptionKeys`` which KeyRing keys the revision it decrypted needs, and
``keys retire`` refuses while a Sync's published revision needs the key or has not been
reconciled yet. The pure record (``keys/usage_record.py``) is tested first, table-driven.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.keys.dependencies import FileKeys
from sealed_gitops.keys.usage_record import (
    MAX_EXAMPLES,
    MAX_GROUPS,
    needs,
    next_status,
    usage_record,
)

from .conftest import (
    Setup,
    active,
    create_keyring,
    create_repo_and_sync,
    published,
    ready,
    sealed_secret,
    secret_values,
    sops_secret,
    wait_for,
    wait_keys,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _record(*files: FileKeys) -> dict[str, Any]:
    return usage_record(files, keyring="ns/ring", revision="main@sha1:1")


@pytest.mark.parametrize(
    ("files", "key", "usable", "needed"),
    [
        # a SOPS file for A only needs A
        ([FileKeys("x.yaml", "sops", [{A}])], A, [A, B], 1),
        # for A and C: not while C still decrypts, but once C is the only one left it needs C
        ([FileKeys("x.yaml", "sops", [{A, C}])], A, [A, B, C], 0),
        ([FileKeys("x.yaml", "sops", [{A, C}])], C, [B, C], 1),
        # a sealed file needs every value openable: one value for A alone is enough to need A
        ([FileKeys("s.yaml", "sealed", [{B}, {A}])], A, [A, B], 1),
        # a value without a key-id hint (kubeseal) may need any key
        ([FileKeys("k.yaml", "sealed", [set()], unknown=1)], A, [A, B], 1),
        # a file for keys of no concern to this KeyRing needs none of them
        ([FileKeys("dev.yaml", "sops", [set()])], A, [A, B], 0),
        # two files with the same keys form one group and count twice
        ([FileKeys("1.yaml", "sops", [{A}]), FileKeys("2.yaml", "sops", [{A}])], A, [A], 2),
    ],
)
def test_the_record_says_which_files_need_a_key(
    files: list[FileKeys], key: str, usable: list[str], needed: int
) -> None:
    need = needs(_record(*files), key, usable=usable)
    assert (need.files, need.undecidable) == (needed, False)
    if needed:
        assert set(need.examples) <= {f.file for f in files} and need.examples


def test_a_record_nobody_can_rely_on_is_undecidable_never_not_needed() -> None:
    many = [FileKeys(f"{i}.yaml", "sops", [{f"{i:064x}"}]) for i in range(MAX_GROUPS + 1)]
    record = _record(*many)
    assert record["truncated"] is True and len(record["groups"]) == MAX_GROUPS
    assert needs(record, A, usable=[A]).undecidable
    assert needs({"revision": "r", "groups": "forged"}, A, usable=[A]).undecidable
    assert needs({"groups": [{"keySets": "x"}]}, A, usable=[A]).undecidable


@pytest.mark.parametrize(
    "group",
    [
        # a key set written as a string, not a list: dropping it would answer "not needed"
        {"keySets": [A], "files": 1},
        {"keySets": [[A], {"x": A}], "files": 1},
        # a key set naming a key as something other than a string
        {"keySets": [[A, 1]], "files": 1},
        # nothing would open the group's files: usage_record never writes that
        {"keySets": [], "unknown": False, "files": 1},
    ],
)
def test_a_forged_group_is_undecidable_never_not_needed(group: dict[str, Any]) -> None:
    # status.decryptionKeys may be edited by anyone who may write the Sync's status: a group
    # that usage_record could not have written must not let `keys retire` go ahead.
    assert needs({"revision": "r", "groups": [group]}, A, usable=[A, B]).undecidable


def test_examples_read_back_from_a_status_are_bounded() -> None:
    # A forged record may list any number of examples (or a string): the refusal names at most
    # MAX_EXAMPLES files per group, each a path, never the characters of a string.
    forged = {"keySets": [[A]], "files": 1, "examples": [f"{i}.yaml" for i in range(10_000)]}
    need = needs({"revision": "r", "groups": [forged]}, A, usable=[A])
    assert (need.files, len(need.examples)) == (1, MAX_EXAMPLES)
    chars = {"keySets": [[A]], "files": 1, "examples": "abc"}
    assert needs({"revision": "r", "groups": [chars]}, A, usable=[A]).examples == ()


def test_last_applied_changes_only_with_an_applied_revision() -> None:
    first = _record(FileKeys("x.yaml", "sops", [{A}]))
    second = {**first, "revision": "main@sha1:2"}
    status = next_status(None, first, applied=True)
    status = next_status(status, second, applied=False)
    assert status["lastAttempted"]["revision"] == "main@sha1:2"
    assert status["lastApplied"]["revision"] == "main@sha1:1"


# -- through the operator ------------------------------------------------------------------------


def _published_revision(setup: Setup) -> str:
    artifact = (setup.kube.repository().get("status") or {}).get("artifact") or {}
    return str(artifact.get("revision") or "")


def _recorded(setup: Setup, revision: str) -> dict[str, Any] | None:
    """The Sync's record of the keys ``revision`` needs, once the operator wrote it."""
    record = (setup.kube.status().get("decryptionKeys") or {}).get("lastApplied") or {}
    return record if revision and record.get("revision") == revision else None


def _wait_recorded(setup: Setup, sha: str) -> dict[str, Any]:
    """The record of the published revision of commit ``sha`` (status is written last)."""
    return dict(
        wait_for(
            lambda: (rev := _published_revision(setup)).endswith(sha) and _recorded(setup, rev),
            timeout=90,
            what=f"the Sync's decryptionKeys for commit {sha[:8]}",
        )
    )


def _start(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An operator, a KeyRing, a Sync applying a SOPS and a sealed file for its first key, then a
    rotation: returns (old key, new key), the old one still needed by the published revision."""
    ns, work = setup.namespace, setup.repo.path
    operator_factory(ns)
    create_keyring(client, ns)
    old = active(wait_keys(setup.kube, ns))
    run_cli(["keys", "fetch", "--keyring", f"{ns}/cluster", "--dir", "keys/c"], cwd=work)
    sha = setup.push(
        {
            "deploy/db.yaml": sops_secret(old["ageRecipient"], "db", ns, password="pw-1"),
            "deploy/api.yaml": sealed_secret(old["sealingCertificate"], "api", ns, token="tk-1"),
        }
    )
    create_repo_and_sync(setup, {"name": "cluster", "namespace": ns})
    wait_for(lambda: secret_values(setup.kube, "db", ns), timeout=90, what="db applied")
    record = _wait_recorded(setup, sha)
    assert record["keyRing"] == f"{ns}/cluster" and record["files"] == 2
    assert record["groups"][0]["keySets"] == [[old["fingerprint"]]]
    run_cli(["keys", "rotate"], cwd=work)
    run_cli(["keys", "fetch"], cwd=work)
    return old, active(published(setup.kube, ns))


def _state(setup: Setup, fingerprint: str) -> str:
    return str(
        {k["fingerprint"]: k["state"] for k in published(setup.kube, setup.namespace)}[fingerprint]
    )


@pytest.mark.e2e
def test_retire_is_decided_by_what_the_sync_applies_not_the_working_tree(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> None:
    ns, work = setup.namespace, Path(setup.repo.path)
    old, _new = _start(setup, operator_factory, client, run_cli)
    retire = ["keys", "retire", old["fingerprint"][:16]]

    # reencrypt in the working tree only: it no longer needs the old key, the cluster still does
    run_cli(["reencrypt", "deploy"], cwd=work)
    refused = run_cli(retire, cwd=work, ok=False)
    assert refused.exit_code == 1, refused.output
    assert f"Sync {ns}/app at revision" in refused.output
    assert "2 file(s) can only be decrypted" in refused.output
    assert "deploy/db.yaml" in refused.output and "deploy/api.yaml" in refused.output
    assert _state(setup, old["fingerprint"]) == "previous"

    # pushed, but the Sync has not reconciled it (suspended): nobody can know, so refused
    run_cli(["suspend", f"{ns}/app"], cwd=work)
    sha = setup.repo.commit("reencrypt")
    setup.repo.push()
    run_cli(["reconcile", f"{ns}/app", "--kind", "repository", "--wait"], cwd=work)
    revision = wait_for(
        lambda: (rev := _published_revision(setup)).endswith(sha) and rev,
        timeout=90,
        what="the Repository to publish the re-encrypted commit",
    )
    unknown = run_cli(retire, cwd=work, ok=False)
    assert unknown.exit_code == 1, unknown.output
    assert f"Sync {ns}/app has not yet reconciled revision {revision}" in unknown.output
    assert "sealed-gitops resume" in unknown.output
    assert _state(setup, old["fingerprint"]) == "previous"

    # reconciled: the published revision needs only the new key, so the old one may go
    run_cli(["resume", f"{ns}/app"], cwd=work)
    run_cli(["reconcile", "--with-source", f"{ns}/app", "--wait"], cwd=work)
    wait_for(lambda: _recorded(setup, revision), timeout=90, what="the record of the new revision")
    done = run_cli(retire, cwd=work)
    assert "retired (1 Sync(s) use" in done.output
    assert _state(setup, old["fingerprint"]) == "retired"
    assert secret_values(setup.kube, "db", ns) == {"password": "pw-1"}


@pytest.mark.e2e
def test_force_retires_with_a_warning_and_the_failure_says_the_key_was_retired(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any
) -> None:
    ns, work = setup.namespace, Path(setup.repo.path)
    old, _new = _start(setup, operator_factory, client, run_cli)
    forced = run_cli(["keys", "retire", old["fingerprint"][:16], "--force"], cwd=work)
    assert f"warning: --force: Sync {ns}/app at revision" in forced.output
    assert _state(setup, old["fingerprint"]) == "retired"

    # the published revision still needs it: the next reconcile fails, and says why
    cond = wait_for(
        lambda: (
            (r := ready(setup.kube.sync()))
            and r["status"] == "False"
            and "was retired at" in r["message"]
            and r
        ),
        timeout=90,
        what="DecryptionFailed naming the retired key",
    )
    assert cond["reason"] == "DecryptionFailed"
    assert old["fingerprint"][:16] in cond["message"]
    assert secret_values(setup.kube, "db", ns) == {"password": "pw-1"}
