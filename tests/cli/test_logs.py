"""``sealed-gitops logs``: the operator's lines about one Sync (issue 15, Must 7; ``flux logs``).

A real in-process operator reconciles a Sync whose file no key opens (so it has something to
say), with its log lines formatted as the operator writes them in a pod (``JsonFormatter``); the
test saves them, as ``kubectl logs`` would, and reads them back with ``--from-file`` (both
tiers), and through the API's ``pods/NAME/log`` (emulator tier only: there is no kubelet behind
the real control plane here). The line rules (matching, escaping, order) are tested pure first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.log_lines import MAX_MESSAGE, ObjectRef, newest, parse_line
from sealed_gitops.cli.logs_cmds import DEFAULT_SELECTOR
from sealed_gitops.cli.main import cli
from sealed_gitops.cli.operator_process import JsonFormatter
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.redact import RedactingFilter
from sealed_gitops.testing.kube.server import KubeEmulator
from tests.cli.conftest import CANARY
from tests.cli.test_lazy_help import _heavy, _modules_after
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    operator_factory,
    ready,
    setup,
    wait_for,
)
from tests.operator.manifests import secret_doc

SYNC = ObjectRef("Sync", "team-a", "app")


def _json(time: str, message: str, obj: dict[str, str] | None = None, **extra: str) -> str:
    line: dict[str, object] = {"time": time, "level": "info", "logger": "x", "message": message}
    if obj is not None:
        line["object"] = obj
    return json.dumps({**line, **extra})


# -- the line rules, pure -------------------------------------------------------------------------


SYNC_OBJ = {"kind": "Sync", "namespace": "team-a", "name": "app"}
T0 = "2026-12-05T10:00:00+00:00"


@pytest.mark.parametrize(
    ("raw", "about"),
    [
        (_json(T0, "x", SYNC_OBJ), True),
        # kopf's k8s_ref kind is the Kind; the Repository of the same name is another object
        (_json(T0, "x", {**SYNC_OBJ, "kind": "Repository"}), False),
        # no object: the message names it, not as the prefix of a longer name
        (_json(T0, "Sync team-a/app: DecryptionFailed: x"), True),
        (_json(T0, "Sync team-a/app2: DecryptionFailed: x"), False),
        (_json(T0, "Sync team-a/app.v2 failed"), False),
        ("2026-12-05 10:00:00,123 WARNING sealed_gitops.operator.sync: Sync team-a/app: x", True),
        ("2026-12-05 10:00:00,123 WARNING sealed_gitops.operator.sync: Sync team-b/app: x", False),
        ("not json {", False),
    ],
)
def test_a_line_is_about_its_object_or_the_object_its_message_names(raw: str, about: bool) -> None:
    assert parse_line(raw).about(SYNC) is about


def test_a_line_is_shown_escaped_and_bounded() -> None:
    forged = "Sync team-a/app: \x1b[2J\x1b[31mgone\nINFO forged line\r" + "y" * 10_000
    shown = parse_line(_json("2026-12-05T10:00:00+00:00", forged)).human(show_pod=False)
    assert "\x1b" not in shown and "\n" not in shown and "\r" not in shown
    assert "\\x1b[2J" in shown and "\\n" in shown
    assert len(shown) < MAX_MESSAGE + 200
    # the bound is exact: a message that fits is whole, one character more is cut with "..."
    fits = parse_line(_json("2026-12-05T10:00:00+00:00", "z" * MAX_MESSAGE)).human(show_pod=False)
    assert fits.endswith(" " + "z" * MAX_MESSAGE)
    over = parse_line(_json("2026-12-05T10:00:00+00:00", "z" * (MAX_MESSAGE + 1)))
    assert over.human(show_pod=False).endswith("z" * (MAX_MESSAGE - 3) + "...")
    as_json = parse_line(_json("2026-12-05T10:00:00+00:00", forged), pod="op-1").json()
    assert "\x1b" not in as_json and "\n" not in as_json
    assert json.loads(as_json)["message"] == forged and json.loads(as_json)["pod"] == "op-1"
    evil_name = {"kind": "Sync", "namespace": "team-a", "name": "app\x1b]0;title\x07"}
    row = parse_line(_json("2026-12-05T10:00:00+00:00", "m", evil_name)).human(show_pod=False)
    assert "\x1b" not in row and "\x07" not in row


def test_lines_of_several_pods_merge_by_time_then_since_and_tail() -> None:
    lines = [
        parse_line(_json("2026-12-05T10:00:02+00:00", "b"), pod="op-1"),
        parse_line("Traceback (continuation of b)", pod="op-1"),
        parse_line(_json("2026-12-05T10:00:01+00:00", "a"), pod="op-2"),
        parse_line(_json("2026-12-05T10:00:03+00:00", "c"), pod="op-2"),
    ]
    assert [line.message for line in newest(lines, since=None, tail=None)] == [
        "a", "b", "Traceback (continuation of b)", "c",
    ]  # fmt: skip
    since = dt.datetime(2026, 12, 5, 10, 0, 2, tzinfo=dt.UTC)
    assert [line.message for line in newest(lines, since=since, tail=2)] == [
        "Traceback (continuation of b)", "c",
    ]  # fmt: skip
    assert newest(lines, since=None, tail=0) == []


def test_help_imports_no_heavy_library() -> None:
    out, modules = _modules_after("logs", "--help")
    assert "--from-file" in out and "--follow" in out and "--kubeconfig" in out
    assert _heavy(modules) == []


def test_follow_is_for_the_pods_not_a_saved_file(tmp_path: Path) -> None:
    saved = tmp_path / "op.log"
    saved.write_text("")
    result = CliRunner().invoke(cli, ["logs", "team-a/app", "--from-file", str(saved), "-f"])
    assert result.exit_code == 2 and "not with --from-file" in result.output


# -- an operator's own lines ----------------------------------------------------------------------


class _Lines(logging.Handler):
    """Keeps each record as the operator writes it in a pod: one redacted JSON line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactingFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def operator_lines() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if not level or level > logging.INFO else level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def failing_sync(
    setup: Setup,  # noqa: F811 - the fixture imported above
    operator_factory: Callable[..., object],  # noqa: F811
    operator_lines: _Lines,
) -> tuple[Setup, list[str]]:
    """A Sync whose only file is encrypted for a key nobody gave it: DecryptionFailed, logged."""
    ns = setup.namespace
    stranger = str(pyrage.x25519.Identity.generate().to_public())
    plain = yaml.safe_dump(secret_doc("db", ns, password=CANARY + "logs")).encode()
    encrypted = encrypt_bytes(plain, key_groups=[[AgeRecipient(stranger)]], file="db.yaml")
    setup.push({"deploy/db.yaml": encrypted.decode()})
    setup.objects(interval="1h")
    operator_factory(ns)
    wait_for(
        lambda: (r := ready(setup.kube.sync())) and r["reason"] == "DecryptionFailed",
        timeout=90,
        what="DecryptionFailed",
    )
    about = f"Sync {ns}/app: DecryptionFailed"
    wait_for(lambda: any(about in line for line in operator_lines.lines), what="the log line")
    return setup, list(operator_lines.lines)


def _logs(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["logs", *args])
    assert CANARY not in result.output
    return result


def test_from_file_shows_the_lines_about_one_sync(
    failing_sync: tuple[Setup, list[str]], tmp_path: Path
) -> None:
    world, lines = failing_sync
    ns = world.namespace
    saved = tmp_path / "operator.log"
    saved.write_text("\n".join(lines) + "\n")
    # every line of the Sync's reconcile says which object it is about, even the project's own
    mine = [json.loads(line) for line in lines if f"Sync {ns}/app:" in line]
    assert mine and all(
        line["object"] == {"kind": "Sync", "namespace": ns, "name": "app"} for line in mine
    )

    text = _logs(f"{ns}/app", "--from-file", str(saved))
    assert text.exit_code == 0, text.output
    assert f"Sync/{ns}/app" in text.output and "DecryptionFailed" in text.output
    assert f"Repository/{ns}/app" not in text.output

    rows = [json.loads(row) for row in _logs("app", "-n", ns, "--from-file", str(saved),
                                             "-o", "json").output.splitlines()]  # fmt: skip
    assert rows and all(
        row["object"] == {"kind": "Sync", "namespace": ns, "name": "app"} for row in rows
    )
    last = _logs(f"{ns}/app", "--from-file", str(saved), "-o", "json", "--tail", "1").output
    assert [json.loads(row) for row in last.splitlines()] == rows[-1:]
    repo = _logs(f"{ns}/app", "--kind", "repository", "--from-file", str(saved), "-o", "json")
    objects = [json.loads(row).get("object") for row in repo.output.splitlines()]
    repository = ObjectRef("Repository", ns, "app")
    assert len(objects) == sum(parse_line(line).about(repository) for line in lines)
    assert {o["kind"] for o in objects if o} <= {"Repository"}


def test_through_the_api_from_the_operator_pods(
    request: pytest.FixtureRequest,
    _cluster: tuple[Path, KubeEmulator | None],  # noqa: F811
    kubeconfig: Path,  # noqa: F811
) -> None:
    emulator = _cluster[1]
    if emulator is None:
        pytest.skip(
            "pods/NAME/log is served by the kubelet of the pod's node, and the real control "
            "plane of these tests runs no node (an unscheduled pod's log is empty there): the "
            "API read runs on the emulator tier only (--from-file is tested on both; "
            "docs/emulator.md, Known differences)"
        )
    world, lines = request.getfixturevalue("failing_sync")
    ns = world.namespace
    selected = dict(part.split("=") for part in DEFAULT_SELECTOR.split(","))
    half = len(lines) // 2
    # the unsharded operator's pod and a shard's (deploy/shards/shard1): both are read
    for pod, text, component in (
        ("operator-a", lines[:half], "operator"),
        ("operator-b", lines[half:], "operator-shard1"),
    ):
        labels = {**selected, "app.kubernetes.io/component": component}
        world.kube.client.request(
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            body={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "labels": labels},
                "spec": {"containers": [{"name": "operator", "image": "sealed-gitops"}]},
            },
            action="create",
            what="Pod",
        )
        emulator.pod_logs[(ns, pod)] = "\n".join(text) + "\n"
    common = ["--operator-namespace", ns, "--kubeconfig", str(kubeconfig)]
    result = _logs(f"{ns}/app", *common, "-o", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(row) for row in result.output.splitlines()]
    pods = {row["pod"] for row in rows}
    assert pods <= {"operator-a", "operator-b"}
    assert "operator-b" in pods, "the shard's pod was not read"
    assert any("DecryptionFailed" in row["message"] for row in rows)
    assert all(row["object"]["name"] == "app" and row["object"]["kind"] == "Sync" for row in rows)
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    text = _logs(f"{ns}/app", *common, "--tail", "2")
    assert len(text.output.splitlines()) == 2 and text.output.startswith("operator-")
    missing = _logs(f"{ns}/app", "--operator-namespace", "default", "--kubeconfig",
                    str(kubeconfig))  # fmt: skip
    assert missing.exit_code == 1 and "--from-file" in missing.output
    # --follow: the emulator's stream sends the stored text again and ends (a container that
    # exited); what the backlog printed is not printed twice, and a new line is
    emulator.pod_logs[(ns, "operator-b")] += (
        _json(dt.datetime.now(dt.UTC).isoformat(), f"Sync {ns}/app: one more line") + "\n"
    )
    followed = _logs(f"{ns}/app", *common, "-o", "json", "-f")
    assert followed.exit_code == 0, followed.output
    again = [json.loads(row) for row in followed.output.splitlines()]
    assert again[: len(rows)] == rows and [r["message"] for r in again[len(rows) :]] == [
        f"Sync {ns}/app: one more line"
    ]


def test_the_emulators_pod_log_honours_limit_bytes_and_needs_the_pod(
    _cluster: tuple[Path, KubeEmulator | None],  # noqa: F811
    client: Any,  # noqa: F811
) -> None:
    from sealed_gitops.cluster.pod_logs import read_pod_log
    from sealed_gitops.errors import ApiNotFound

    emulator = _cluster[1]
    if emulator is None:
        pytest.skip("the emulator's own pods/log (a real server asks the kubelet of a node)")
    name = "log-probe"
    client.request(
        "POST", "/api/v1/namespaces/default/pods",
        body={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
              "spec": {"containers": [{"name": "c", "image": "x"}]}},
        action="create", what="Pod",
    )  # fmt: skip
    try:
        emulator.pod_logs[("default", name)] = "one\ntwo\nthree\n"
        assert read_pod_log(client, "default", name) == "one\ntwo\nthree\n"
        assert read_pod_log(client, "default", name, limit_bytes=5) == "one\nt"
        with pytest.raises(ApiNotFound):
            read_pod_log(client, "default", "no-such-pod")
    finally:
        client.request(
            "DELETE", f"/api/v1/namespaces/default/pods/{name}", action="delete", what="Pod"
        )
