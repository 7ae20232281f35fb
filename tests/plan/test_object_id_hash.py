"""ObjectId keeps its hash (the apply plan hashes each id about twenty times per reconcile, so
the generated per-call tuple hash showed in benchmarks/scale.py's profile); the cached hash must
behave exactly like the generated one: equal ids hash alike, replace() and pickling rebuild it."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys

import pytest

from sealed_gitops.errors import FormatError
from sealed_gitops.plan.ids import ObjectId


def test_equal_ids_hash_alike_and_find_each_other() -> None:
    a = ObjectId("ns", "db", "", "Secret")
    b = ObjectId(namespace="ns", name="db", group="", kind="Secret")
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1 and b in {a}
    assert hash(a) == hash(("ns", "db", "", "Secret"))


def test_replace_copy_and_pickle_give_the_right_hash() -> None:
    a = ObjectId("ns", "db", "", "Secret")
    other = dataclasses.replace(a, name="api")
    assert other != a and hash(other) == hash(("ns", "api", "", "Secret"))
    assert {other: 1}.get(ObjectId("ns", "api", "", "Secret")) == 1
    for clone in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):  # noqa: S301
        assert clone == a and hash(clone) == hash(a)


def test_a_pickled_id_from_another_process_is_found_in_a_dict() -> None:
    # String hashes are randomised per process: a hash carried in the pickle would be wrong here.
    code = (
        "import pickle,sys; from sealed_gitops.plan.ids import ObjectId; "
        "sys.stdout.buffer.write(pickle.dumps(ObjectId('ns','db','apps','Deployment')))"
    )
    data = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    loaded = pickle.loads(data)  # noqa: S301 - our own bytes
    assert {ObjectId("ns", "db", "apps", "Deployment"): "found"}[loaded] == "found"


def test_an_invalid_id_is_still_refused() -> None:
    with pytest.raises(FormatError):
        ObjectId("ns", "Bad_Name", "", "Secret")
