"""The diff text: ordinary objects as a unified diff, Secrets as key names and change kinds."""

from __future__ import annotations

from typing import Any

from sealed_gitops import redact
from sealed_gitops.plan import object_diff
from sealed_gitops.plan.diff import apply_overlay

from .test_changes import CANARY, CANARY2, b64, cm, live, secret


def test_unchanged_object_gives_empty_text() -> None:
    obj = cm("x", a="1")
    current = live(obj)
    current["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"
    }
    current["status"] = {"phase": "ok"}
    assert object_diff(obj, current) == ""


def test_changed_configmap_shows_values() -> None:
    text = object_diff(cm("x", a="2"), live(cm("x", a="1")))
    assert "--- live/ConfigMap app/x" in text and "+++ desired/ConfigMap app/x" in text
    assert "-  a: '1'" in text and "+  a: '2'" in text
    assert "resourceVersion" not in text and "managedFields" not in text


def test_server_defaults_are_no_noise() -> None:
    desired: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "d", "namespace": "n"},
                               "spec": {"replicas": 2}}
    current = {**desired, "spec": {"replicas": 1, "revisionHistoryLimit": 10}}
    text = object_diff(desired, current)
    assert "+  replicas: 2" in text and "-  replicas: 1" in text
    assert "revisionHistoryLimit" not in "".join(
        line for line in text.splitlines() if line.startswith(("+", "-"))
        and not line.startswith(("+++", "---"))
    )


def test_create_and_prune() -> None:
    assert "--- /dev/null" in object_diff(cm("x", a="1"), None)
    assert "+++ /dev/null" in object_diff(None, live(cm("x", a="1")))
    assert object_diff(None, None) == ""


def test_secret_shows_keys_and_change_kinds_only() -> None:
    desired = secret("db", password=CANARY, user="admin-user")
    desired["metadata"]["labels"] = {"tier": "db"}
    current = live(secret("db", password=CANARY2, removed=CANARY))
    text = object_diff(desired, current)
    lines = text.splitlines()
    assert "~ data password: changed" in lines
    assert "+ data user: added" in lines
    assert "- data removed: removed" in lines
    assert "+    tier: db" in lines  # metadata is diffed in clear
    for value in (CANARY, CANARY2, "admin-user"):
        assert value not in text and b64(value) not in text


def test_secret_without_changes_gives_empty_text() -> None:
    assert object_diff(secret(password=CANARY), live(secret(password=CANARY))) == ""


def test_sensitive_non_secret_is_shown_as_paths() -> None:
    desired = cm("enc", password=CANARY, host="db")
    current = live(cm("enc", password=CANARY2, host="db"))
    text = object_diff(desired, current, sensitive=True)
    assert "~ value data.password: changed" in text.splitlines()
    assert CANARY not in text and CANARY2 not in text


def test_registered_values_are_redacted_even_in_plain_diffs() -> None:
    value = "canary-registered-Kp09"
    redact.register(value)
    text = object_diff(cm("x", a=value), live(cm("x", a="old")))
    assert value not in text and redact.MASK in text


def test_apply_overlay_merges_mappings_and_replaces_lists() -> None:
    assert apply_overlay({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]}) == {
        "a": {"x": 1, "y": 3}, "l": [9]
    }
