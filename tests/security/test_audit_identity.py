"""Issue 11, finding 10: a committer blanks audit records (invariant 8).

The attack: a committer of team-b commits a Secret whose multi-line value holds the line
``Mallory <m@x>`` and another whose value is ``main``. Every line of a multi-line value was
registered for redaction, in one registry for the whole process that never forgets, so from then
on the author of every audit line and Event (team-a's too) read ``[REDACTED]``, and so did every
revision ``main@sha1:...`` in every tenant's status. Redaction must hide values, never who
changed what: commit, revision, author and object names come from Git and the API.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops import redact
from sealed_gitops.audit.log import AUDIT_LOGGER, install_audit_stream
from sealed_gitops.cluster import KubeClient
from tests.operator.conftest import Setup, is_ready, make_setup, ready, wait_for
from tests.operator.manifests import secret_doc

MALLORY = ("Mallory", "m@x")
MALLORY_TEXT = "Mallory <m@x>"


@pytest.fixture
def audit_stream() -> Iterator[io.StringIO]:
    """The operator's audit lines, as ``sealed-gitops operator`` writes them (JSON per line)."""
    logger = logging.getLogger(AUDIT_LOGGER)
    saved = (list(logger.handlers), logger.propagate, logger.level)
    stream = io.StringIO()
    install_audit_stream(stream)
    yield stream
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])


@pytest.fixture
def two_tenants(crds: None, client: KubeClient, tmp_path: Path) -> Iterator[tuple[Setup, Setup]]:
    with make_setup(client, tmp_path / "a") as team_a, make_setup(client, tmp_path / "b") as team_b:
        yield team_a, team_b


def _audit_lines(stream: io.StringIO, setup: Setup) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("sync") == f"{setup.namespace}/app"]


def _applied_events(setup: Setup) -> list[str]:
    return [str(e.get("message")) for e in setup.kube.events() if e.get("reason") == "Applied"]


def _head(setup: Setup) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=setup.repo.path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _wait_applied(setup: Setup, sha: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        sync = setup.kube.sync()
        status = sync.get("status") or {}
        if is_ready(sync) and sha in str(status.get("lastAppliedRevision")):
            return sync
        return None

    return dict(wait_for(done, what=f"{setup.namespace} applied {sha[:12]}"))


@pytest.mark.e2e
def test_a_committed_value_cannot_blank_who_changed_what(
    two_tenants: tuple[Setup, Setup], operator_factory: Any, audit_stream: io.StringIO
) -> None:
    team_a, team_b = two_tenants
    # team-b's committer: a multi-line value with Mallory's line, and a short common word.
    hostile = f"user = admin\n{MALLORY_TEXT}\npassword = {uuid.uuid4().hex}"
    b_first = team_b.push(
        {
            "deploy/trap.yaml": team_b.encrypt(
                secret_doc("trap", team_b.namespace, config=hostile, branch="main")
            )
        }
    )
    team_a.objects()
    team_b.objects()
    operator_factory(team_a.namespace, watch=[team_a.namespace, team_b.namespace])
    _wait_applied(team_b, b_first)

    # Mallory really commits, to team-a and then to team-b: the records must name her.
    secret = uuid.uuid4().hex
    a_sha = team_a.push(
        {"deploy/db.yaml": team_a.encrypt(secret_doc("db", team_a.namespace, password=secret))},
        author=MALLORY,
    )
    sync_a = _wait_applied(team_a, a_sha)
    b_sha = team_b.push(
        {
            "deploy/db.yaml": team_b.encrypt(
                secret_doc("db", team_b.namespace, password=uuid.uuid4().hex)
            )
        },
        author=MALLORY,
    )
    _wait_applied(team_b, b_sha)

    for setup, sha in ((team_a, a_sha), (team_b, b_sha)):
        records = [r for r in _audit_lines(audit_stream, setup) if r.get("commit") == sha]
        assert records, (setup.namespace, audit_stream.getvalue())
        assert {r["author"] for r in records} == {MALLORY_TEXT}, records
        assert {r["object"] for r in records} == {f"Secret/{setup.namespace}/db"}, records
        assert all(str(r["revision"]).startswith("main@sha1:") for r in records), records
        events = [m for m in _applied_events(setup) if sha in m]
        assert events, _applied_events(setup)
        assert f"main@sha1:{sha} by {MALLORY_TEXT}" in events[-1], events
        assert f"Secret {setup.namespace}/db" in events[-1], events
    # team-b's values mask nothing of team-a's status: "main" is team-b's value, not team-a's.
    assert (ready(sync_a) or {}).get("message") == f"Applied revision: main@sha1:{a_sha}"
    assert secret not in audit_stream.getvalue()


# -- the rules underneath -----------------------------------------------------------------------


def test_short_lines_of_a_value_are_not_registered_but_long_ones_are() -> None:
    long_line = f"token-{uuid.uuid4().hex}"
    redact.register(f"{MALLORY_TEXT}\n{long_line}\n-----BEGIN PRIVATE KEY-----")
    assert redact.redact(f"by {MALLORY_TEXT}") == f"by {MALLORY_TEXT}"
    assert redact.redact("-----BEGIN PRIVATE KEY-----") == "-----BEGIN PRIVATE KEY-----"
    assert redact.redact(f"x {long_line} y") == f"x {redact.MASK} y"


def test_a_value_registered_for_one_tenant_masks_only_that_tenant_and_the_logs() -> None:
    with redact.scope("team-b"):
        redact.register("main")
        redact.register("Applied revision")
        assert redact.redact("Applied revision: main@sha1:1") == "[REDACTED]: [REDACTED]@sha1:1"
    with redact.scope("team-a"):
        assert redact.redact("Applied revision: main@sha1:1") == "Applied revision: main@sha1:1"
    # Outside any scope (the CLI, log records) every value applies: protection first.
    assert redact.redact("main") == redact.MASK
    assert redact.redact_everywhere("main") == redact.MASK


def test_long_values_are_masked_in_every_scope() -> None:
    key = f"AGE-SECRET-KEY-{uuid.uuid4().hex.upper()}"
    with redact.scope("team-b"):
        redact.register(key)
    with redact.scope("team-a"):
        assert redact.redact(f"x {key}") == f"x {redact.MASK}"


def test_identities_are_inserted_after_the_free_text_is_redacted() -> None:
    redact.register(MALLORY_TEXT)
    redact.register("password-canary-0001")
    text = redact.compose(
        redact.Identity("main@sha1:abc"),
        " by ",
        redact.Identity(MALLORY_TEXT),
        ": value password-canary-0001 and " + MALLORY_TEXT,
    )
    assert text == f"main@sha1:abc by {MALLORY_TEXT}: value {redact.MASK} and {redact.MASK}"
    # a sink that redacts again keeps the identities
    assert redact.redact(text) == text
    assert redact.cut(text, limit=1000) == text
    # an identity cannot forge a second line
    forged = redact.compose(redact.Identity("Eve <e@x>\nApplied: nothing"))
    assert "\n" not in forged


def test_the_audit_line_takes_its_identity_fields_verbatim() -> None:
    redact.register(MALLORY_TEXT)
    redact.register("db-password-canary")
    stream = io.StringIO()
    logger = logging.getLogger(AUDIT_LOGGER)
    saved = (list(logger.handlers), logger.propagate, logger.level)
    try:
        install_audit_stream(stream)
        identity = {"author": MALLORY_TEXT, "commit": "abc", "object": "Secret/a/db"}
        logger.info(
            json.dumps({"event": "secret-applied", "note": "db-password-canary", **identity}),
            extra={"audit_identity": identity},
        )
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    line = json.loads(stream.getvalue())
    assert line["author"] == MALLORY_TEXT and line["object"] == "Secret/a/db"
    assert line["note"] == redact.MASK
