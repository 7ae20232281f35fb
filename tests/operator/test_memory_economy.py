"""What a Sync keeps between reconciles (issue 16, Must 4: peak RSS at 20,000 objects).

Why: the operator's per-Sync content cache used to hold a SOPS file twice, as its parsed
ciphertext (the render stage's result) and as its decrypted result. It now keeps only the
decrypted one (``render/cache.py``: ``superseded``), re-parsing an unchanged file's ciphertext in
the build after a new commit. These tests pin the policy and show that the paths that depend on
what is kept still work: a one-file commit applies the new value and opens no other file, and a
live edit is still put back at the next interval.
"""

from __future__ import annotations

from typing import Any

import pytest

from sealed_gitops.operator.context import SyncMemory
from sealed_gitops.operator.inventory_memo import previous_inventory as _previous_inventory
from sealed_gitops.plan.ids import status_fingerprint
from sealed_gitops.render.cache import DECRYPTED_SUPERSEDES_PARSED, ContentCache

from .conftest import Setup, decoded, is_ready, wait_for
from .manifests import config_doc, sample, secret_doc


def _build(cache: ContentCache, files: dict[str, bytes], *, decrypt: set[str]) -> None:
    """What one build asks of the cache: every file parsed, the SOPS ones decrypted."""
    for rel, data in files.items():
        cache.get_or_compute("parsed", rel, data, lambda: ["documents"])
        if rel in decrypt:
            cache.get_or_compute("decrypted", rel, data, lambda: ["plaintext"])
    cache.sweep()


def test_a_decrypted_result_supersedes_the_parsed_ciphertext_of_the_same_bytes() -> None:
    cache = ContentCache(superseded=DECRYPTED_SUPERSEDES_PARSED)
    files = {"db.yaml": b"sops one", "cm.yaml": b"plain"}
    _build(cache, files, decrypt={"db.yaml"})
    assert (cache.held("parsed"), cache.held("decrypted")) == (1, 1)  # cm's parse, db's result
    _build(cache, files, decrypt={"db.yaml"})
    # the next build re-parses db.yaml (cheap) and decrypts nothing again
    assert cache.computed == {"parsed": 3, "decrypted": 1}
    assert (cache.held("parsed"), cache.held("decrypted")) == (1, 1)


def test_a_parse_stays_when_its_decryption_was_not_kept() -> None:
    cache = ContentCache(superseded=DECRYPTED_SUPERSEDES_PARSED)
    _build(cache, {"db.yaml": b"v1"}, decrypt={"db.yaml"})
    # a build that parsed the new bytes but stopped before decrypting them (Atomic failure):
    # no decrypted result of these bytes, so their parse is kept
    _build(cache, {"db.yaml": b"v2"}, decrypt=set())
    assert (cache.held("parsed"), cache.held("decrypted")) == (1, 0)


def test_without_a_policy_the_cache_keeps_both() -> None:
    cache = ContentCache()
    _build(cache, {"db.yaml": b"sops"}, decrypt={"db.yaml"})
    assert (cache.held("parsed"), cache.held("decrypted")) == (1, 1)


def _status(*ids: str) -> dict[str, Any]:
    return {"entries": [{"id": i, "v": "v1"} for i in ids]}


def test_the_status_inventory_is_kept_as_a_fingerprint_and_parsed_again_when_it_changes() -> None:
    memory = SyncMemory()
    first = _previous_inventory(memory, _status("ns_a__Secret", "ns_b__Secret"))
    # the same status read again (a new but equal value): the parse of last time, nothing kept
    # of the status itself but its fingerprint
    assert _previous_inventory(memory, _status("ns_a__Secret", "ns_b__Secret")) is first
    assert memory.inventory is not None and memory.inventory[0] == status_fingerprint(
        _status("ns_a__Secret", "ns_b__Secret")
    )
    assert memory.inventory[2]  # sorted and unique: it writes back as read
    # someone edits the status: parsed again, and what the edit says is what is used
    edited = _previous_inventory(memory, _status("ns_a__Secret"))
    assert edited is not first and [str(e.id) for e in edited.entries] == ["ns_a__Secret"]
    # unsorted as read: parsed (sorted), and not taken as the status form of the parse
    _previous_inventory(memory, _status("ns_b__Secret", "ns_a__Secret"))
    assert memory.inventory is not None and not memory.inventory[2]


@pytest.mark.parametrize(
    ("one", "other"),
    [({"a": [1]}, {"a": [1.0]}), ({"a": None}, {"a": float("nan")}), ({"a": "1"}, {"a": 1})],
)
def test_different_status_values_have_different_fingerprints(one: Any, other: Any) -> None:
    assert status_fingerprint(one) != status_fingerprint(other)
    assert status_fingerprint({"x": 1, "y": one}) == status_fingerprint({"y": one, "x": 1})


@pytest.mark.e2e
def test_only_decrypted_results_are_kept_and_changes_and_drift_still_apply(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="kept-one")),
            "deploy/api.yaml": setup.encrypt(secret_doc("api", ns, password="kept-two")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects(interval="1s")
    thread = operator_factory(ns)
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=120, what="first reconcile Ready")
    cache = thread.context.sync_memory(ns, "app").cache
    # two SOPS files: their decrypted results only; the ConfigMap's parse
    assert (cache.held("decrypted"), cache.held("parsed")) == (2, 1)
    opened = "sealed_gitops_sops_files_decrypted_total"
    assert sample(thread, opened) == 2

    # one changed file: its new value is applied, and only it is opened again (the unchanged
    # SOPS file's ciphertext is re-parsed, its decrypted result served from the cache)
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="kept-three"))})
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("password") == "kept-three",
        timeout=120,
        what="the changed Secret",
    )
    assert sample(thread, opened) == 3
    assert decoded(setup.kube.secret("api") or {}).get("password") == "kept-two"
    wait_for(
        lambda: (cache.held("decrypted"), cache.held("parsed")) == (2, 1),
        timeout=60,
        what="the cache swept to the new commit's files",
    )

    # drift: a live edit of the Secret whose file did not change is put back at the next
    # interval, from what the Sync kept (no file opened for it)
    setup.kube.patch(
        f"/api/v1/namespaces/{ns}/secrets/api", {"data": {"password": "ZWRpdGVkLWxpdmU="}}
    )
    wait_for(
        lambda: decoded(setup.kube.secret("api") or {}).get("password") == "kept-two",
        timeout=120,
        what="the live edit put back",
    )
    assert sample(thread, opened) == 3
