"""What a Sync remembers of its inventory between reconciles, so a no-op one parses and builds none.

Why a module of its own: the inventory (the ids a Sync applied) is read from the Sync's status at
every reconcile and written back to it; at 2,000 objects per Sync a parse, a sort and a status
form each cost a share of a no-op reconcile, and each copy kept costs memory for as long as the
Sync exists. These functions keep one parsed inventory per Sync (by the fingerprint of the status
it matches), the next inventory while the prepared objects and the previous one are the same, and
after a status write the inventory just written as the parse of what the next reconcile will
read. Each answer is the one a fresh parse or computation would give; only identities are reused.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.cluster import ApplyResult, Desired
from sealed_gitops.operator.context import SyncMemory
from sealed_gitops.plan import Inventory
from sealed_gitops.plan.ids import status_fingerprint

__all__ = ["expect_inventory", "inventory_status", "next_inventory", "previous_inventory"]


def previous_inventory(memory: SyncMemory, raw: Any) -> Inventory:
    """``status.inventory`` parsed, or the parse kept from the last reconcile if it is equal.

    Equal by fingerprint (SHA-256 of its canonical JSON): the status as read is not kept, an
    entry of it per applied object, for as long as the Sync exists.
    """
    key = status_fingerprint(raw)
    if memory.inventory is not None and memory.inventory[0] == key:
        return memory.inventory[1]
    parsed = Inventory.from_status(raw)
    # whether the status holds exactly what writing this inventory would write (sorted, no
    # duplicates): then the status form of an unchanged inventory is the status as read
    memory.inventory = (key, parsed, parsed.to_status() == raw)
    return parsed


def next_inventory(
    memory: SyncMemory, applied: ApplyResult, previous: Inventory, desired: Desired
) -> Inventory:
    """``applied.next_inventory(previous)``; the very ``previous`` object when equal to it.

    When every object applied (or was unchanged), the next inventory is the prepared objects'
    ids and versions, so for the same ``desired`` and ``previous`` objects the answer is the
    one of the last reconcile: kept, a no-op reconcile builds, sorts and compares no entries.
    """
    if not applied.ok:
        return applied.next_inventory(previous)
    held = memory.next_inventory
    if held is not None and held[0] is desired and held[1] is previous:
        return held[2]
    computed = applied.next_inventory(previous)
    result = previous if computed.entries == previous.entries else computed
    memory.next_inventory = (desired, previous, result)
    return result


def inventory_status(memory: SyncMemory, inventory: Inventory, raw: Any) -> Any:
    """The status form of ``inventory``: ``raw``, the status as read, when it is the previous
    inventory unchanged (a no-op reconcile then makes no list of entries to compare), else a
    new one."""
    held = memory.inventory
    if held is not None and held[1] is inventory and held[2]:
        return raw
    return inventory.to_status()


def expect_inventory(memory: SyncMemory, inventory: Inventory, written: Any) -> None:
    """After the status is written: ``inventory`` is the parse of ``written``, its status form.

    So the next reconcile, reading that status back, parses nothing and keeps this inventory,
    whose ids are the prepared objects' own, instead of a second set of 2,000 ids read from the
    status (at 20,000 objects about 5 MB kept, and a reconcile's worth of parse garbage). Exact:
    an inventory's entries are sorted and unique, so ``from_status(to_status())`` is equal to it
    and writes back as what was read; a status changed by anyone else differs in fingerprint.
    """
    held = memory.inventory
    if held is not None and held[1] is inventory and held[2]:
        return  # ``written`` is the status as read, whose fingerprint is kept already (a no-op)
    memory.inventory = (status_fingerprint(written), inventory, True)
