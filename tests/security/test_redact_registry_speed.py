"""What makes registering a value cheap (issue 16) must not change what is masked.

- the index keeps each bucket longest first by inserting in place (no sort per added form);
- a value registered again in the same place is not expanded again;
- the base64 URL-safe form is derived from the standard one;
- a restore makes every registry forget which values it holds whole, so no value is skipped
  whose forms a restore removed.
"""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sealed_gitops.redact as redact_module
from sealed_gitops.redact import GLOBAL_LENGTH, MASK, redact, register, restore, scope, snapshot
from sealed_gitops.redact import forms as forms_module
from sealed_gitops.redact.registry import Registry


def test_buckets_stay_longest_first_whatever_the_order_of_adding() -> None:
    shuffled = [f"postgres://db-{'x' * n}.svc" for n in range(60)]
    random.Random(16).shuffle(shuffled)
    registry = Registry()
    for form in shuffled:
        registry.add([form])
    (bucket,) = registry.index.values()
    assert [len(f) for f in bucket] == sorted((len(f) for f in shuffled), reverse=True)
    assert set(bucket) == set(shuffled)


@given(st.binary(max_size=64))
@settings(max_examples=300, deadline=None)
def test_the_url_safe_form_is_what_the_encoder_gives(raw: bytes) -> None:
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    assert forms_module._base64(raw) == [
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
    ]


def test_a_value_registered_again_is_not_expanded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    expanded: list[str | bytes] = []
    original = forms_module.expand

    def counting(value: str | bytes) -> list[str]:
        expanded.append(value)
        return original(value)

    monkeypatch.setattr(redact_module, "expand", counting)
    register("registered-twice-value")
    register("registered-twice-value")
    with scope("team-speed"):
        register("registered-twice-value")  # another place: its short forms go there
        register("registered-twice-value")
    assert expanded == ["registered-twice-value", "registered-twice-value"]
    with scope("team-speed"):
        assert redact("x registered-twice-value y") == f"x {MASK} y"


def test_after_a_restore_a_value_is_registered_whole_again() -> None:
    long_value = "k" * GLOBAL_LENGTH + "-long-credential"
    with scope("team-restore"):
        register("short-one")  # the scope exists (with forms) before the snapshot
    saved = snapshot()
    with scope("team-restore"):
        register(long_value)  # every form is long: all of them go to the global registry
    restore(saved)  # drops them; the scope's own forms did not change
    assert redact(long_value) == long_value
    with scope("team-restore"):
        register(long_value)
        assert redact(long_value) == MASK
    assert redact(long_value) == MASK
