"""What a Sync keeps once instead of per object or twice (issue 16, Must 4: peak RSS).

Why: at 20,000 objects every byte kept per object is 20 MB. The inventory a reconcile writes to
the Sync's status is the parse of what the next reconcile reads back (no second set of ids), the
ownership labels of objects without labels of their own are one dict per Sync, and a rendered
object has no ``__dict__``. These tests pin that each shortcut gives what the long way gives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sealed_gitops.cluster import SyncRef
from sealed_gitops.operator.context import SyncMemory
from sealed_gitops.operator.inventory_memo import (
    expect_inventory,
    inventory_status,
    previous_inventory,
)
from sealed_gitops.plan import Inventory
from sealed_gitops.plan.ids import InventoryEntry, ObjectId
from sealed_gitops.render.decrypt import RenderedObject
from sealed_gitops.render.document import DocKind


def _inventory(*names: str) -> Inventory:
    return Inventory(tuple(InventoryEntry(ObjectId("ns", n, "", "ConfigMap"), "v1") for n in names))


def _read_back(status: Any) -> Any:
    """The status as the next reconcile reads it: equal, never the same objects."""
    return {"entries": [dict(e) for e in status["entries"]]}


def test_the_written_inventory_is_the_parse_of_the_status_read_back() -> None:
    memory = SyncMemory()
    previous = previous_inventory(memory, None)
    written_inventory = _inventory("b", "a")
    written = inventory_status(memory, written_inventory, None)
    expect_inventory(memory, written_inventory, written)
    read = _read_back(written)
    # the next reconcile parses nothing: the very inventory written, equal to a fresh parse
    assert previous_inventory(memory, read) is written_inventory
    assert Inventory.from_status(read) == written_inventory != previous
    # and an unchanged inventory's status form is the status as read
    assert inventory_status(memory, written_inventory, read) is read


def test_a_status_changed_by_someone_else_is_parsed_again() -> None:
    memory = SyncMemory()
    ours = _inventory("a", "b")
    expect_inventory(memory, ours, ours.to_status())
    edited = {"entries": [{"id": "ns_a__ConfigMap", "v": "v1"}]}
    parsed = previous_inventory(memory, edited)
    assert parsed is not ours
    assert parsed == Inventory.from_status(edited) == _inventory("a")


def test_a_noop_keeps_what_it_holds() -> None:
    memory = SyncMemory()
    raw = _inventory("a").to_status()
    parsed = previous_inventory(memory, raw)
    held = memory.inventory
    expect_inventory(memory, parsed, inventory_status(memory, parsed, raw))
    assert memory.inventory is held  # no fingerprint made again on a no-op


def test_a_status_in_another_order_is_written_sorted_and_that_is_expected() -> None:
    memory = SyncMemory()
    unsorted = {
        "entries": [{"id": "ns_b__ConfigMap", "v": "v1"}, {"id": "ns_a__ConfigMap", "v": "v1"}]
    }
    parsed = previous_inventory(memory, unsorted)
    written = inventory_status(memory, parsed, unsorted)
    assert written != unsorted
    assert written == parsed.to_status()
    expect_inventory(memory, parsed, written)
    assert previous_inventory(memory, _read_back(written)) is parsed


def test_objects_without_labels_share_one_dict_of_the_sync_labels() -> None:
    ref = SyncRef("team-a", "app")
    bare = [
        ref.prepare({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}})
        for n in ("one", "two")
    ]
    labelled = ref.prepare(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"k": "v"}}}
    )
    assert bare[0]["metadata"]["labels"] is bare[1]["metadata"]["labels"]
    assert bare[0]["metadata"]["labels"] == ref.labels
    assert labelled["metadata"]["labels"] == {"k": "v", **ref.labels}
    # the shared dict is not the one ``labels`` hands out (callers may change that one)
    handed = ref.labels
    handed["other"] = "x"
    assert "other" not in bare[0]["metadata"]["labels"]
    assert all(ref.owns(obj) for obj in (*bare, labelled))


def test_a_rendered_object_has_no_instance_dict() -> None:
    rendered = RenderedObject(
        id=ObjectId("ns", "a", "", "ConfigMap"),
        data={},
        file="a.yaml",
        index=0,
        source=DocKind.PLAIN,
    )
    assert not hasattr(rendered, "__dict__")
    assert dataclasses.replace(rendered, index=1).location == "a.yaml (document 1)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rendered.index = 2  # type: ignore[misc]
