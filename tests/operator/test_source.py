"""What reaches the cluster from Git: a webhook makes a push arrive at once, and only commits
signed by a trusted key are applied (issue 6 items 1, 5 and 11)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sealed_gitops.operator.webhook import SIGNATURE_HEADER, sign
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home

from .conftest import Setup, decoded, is_ready, ready, wait_for
from .manifests import reconciles, sample, secret_doc

pytestmark = pytest.mark.e2e

HOOK_TOKEN = "webhook-hmac-secret-7f3a"


def _post(port: int, path: str, body: bytes, signature: str | None) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
    )
    if signature is not None:
        request.add_header(SIGNATURE_HEADER, signature)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - http only
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _checks(thread: Any) -> float:
    """Looks at the remote so far (fetched, unchanged or failed)."""
    return sum(
        sample(thread, "sealed_gitops_git_fetches_total", result=r)
        for r in ("fetched", "unchanged", "failure")
    )


def _password(setup: Setup) -> str | None:
    return decoded(setup.kube.secret("db") or {}).get("password")


def _push_password(setup: Setup, value: str) -> str:
    """Push a ``deploy/db.yaml`` whose password is ``value``; returns the commit."""
    doc = secret_doc("db", setup.namespace, password=value)
    return setup.push({"deploy/db.yaml": setup.encrypt(doc)})


def _serve_webhook(
    setup: Setup, operator_factory: Any, *, what: str = "first apply", **settings: Any
) -> Any:
    """A first revision applied by an operator whose Repository polls only hourly but takes
    webhook pushes signed with HOOK_TOKEN; returns the operator thread."""
    _push_password(setup, "hook-old-value")
    setup.secret_object("hook", {"token": HOOK_TOKEN})
    setup.objects(interval="1h", repository_spec={"webhook": {"secretRef": {"name": "hook"}}})
    thread = operator_factory(setup.namespace, **settings)
    wait_for(lambda: _password(setup) == "hook-old-value", what=what)
    return thread


def _post_push(port: int, ns: str, sha: str) -> int:
    """A correctly signed push event for the Repository ``app`` whose head is now ``sha``."""
    body = b'{"ref": "refs/heads/main", "after": "%s"}' % sha.encode()
    return _post(port, f"/hook/{ns}/app", body, sign(HOOK_TOKEN.encode(), body))


BAD_SIGNATURES: dict[str, Callable[[bytes], str | None]] = {
    "wrong-secret": lambda body: sign(b"not-the-secret", body),
    "garbage": lambda body: "sha256=" + "0" * 64,
    "sha1-style": lambda body: sign(HOOK_TOKEN.encode(), body).replace("sha256=", "sha1="),
    "missing": lambda body: None,
}


def test_a_bad_signature_gets_401_and_triggers_nothing(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    thread = _serve_webhook(setup, operator_factory)

    _push_password(setup, "hook-new-value")
    checks = _checks(thread)
    assert checks >= 1  # the first fetch is counted
    body = b'{"ref": "refs/heads/main"}'
    answers = {
        what: _post(thread.ports.webhook, f"/hook/{ns}/app", body, signature(body))
        for what, signature in BAD_SIGNATURES.items()
    }
    assert answers == dict.fromkeys(BAD_SIGNATURES, 401)
    # a valid signature for a Repository that does not exist says the same
    assert _post(thread.ports.webhook, f"/hook/{ns}/nope", body, sign(HOOK_TOKEN.encode(), body)) \
        == 401
    time.sleep(2.0)
    assert _password(setup) == "hook-old-value"
    assert _checks(thread) == checks  # the remote was not even asked


def test_a_signed_push_reaches_the_cluster_well_before_the_interval(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    thread = _serve_webhook(setup, operator_factory)

    sha = _push_password(setup, "hook-new-value")
    started = time.monotonic()
    assert _post_push(thread.ports.webhook, ns, sha) == 202
    wait_for(lambda: _password(setup) == "hook-new-value", timeout=15, what="pushed value")
    assert time.monotonic() - started < 15
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha}",
        what="revision recorded",
    )


def test_a_push_that_lands_on_the_standby_reaches_the_leader(
    setup: Setup, operator_factory: Any
) -> None:
    """Both replicas serve the webhook; only the leader reconciles. A push answered by the
    standby must not be lost: the standby records it on the Repository and the leader acts."""
    ns = setup.namespace
    lease = {"leader_lease": "webhook-lease", "lease_duration": 30.0}
    leader = _serve_webhook(setup, operator_factory, what="first apply by the leader", **lease)
    standby = operator_factory(ns, **lease)
    leader_checks = _checks(leader)

    sha = _push_password(setup, "hook-new-value")
    started = time.monotonic()
    assert _post_push(standby.ports.webhook, ns, sha) == 202
    wait_for(lambda: _password(setup) == "hook-new-value", timeout=15, what="pushed value")
    # an interval of 1h: only the webhook can have brought it, and well within seconds
    assert time.monotonic() - started < 15
    assert _checks(leader) > leader_checks
    assert leader.running and standby.running
    assert reconciles(standby) == 0 and _checks(standby) == 0  # the standby only relayed it
    repository = setup.kube.repository()
    assert repository["metadata"]["annotations"]["sealed-gitops.io/requested-at"]
    assert repository["status"]["artifact"]["commit"] == sha


@pytest.fixture
def signer() -> Iterator[tuple[GnupgHome, str]]:
    with gnupg_home(generate=1) as home:
        yield home, home.fingerprints()[0]


def test_an_unsigned_commit_is_refused_and_a_signed_one_applied(
    setup: Setup, operator_factory: Any, signer: tuple[GnupgHome, str]
) -> None:
    ns = setup.namespace
    home, fingerprint = signer

    def push_signed(value: str) -> str:
        setup.repo.write({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password=value))})
        sha = setup.repo.commit("signed", sign_with=fingerprint, gnupghome=home.path)
        setup.repo.push()
        return sha

    first = push_signed("signed-value-one")
    setup.secret_object("signers", {"dev.asc": home.export_public(fingerprint)})
    setup.objects(repository_spec={"verify": {"mode": "HEAD", "secretRef": {"name": "signers"}}})
    operator_factory(ns)
    wait_for(lambda: _password(setup) == "signed-value-one", what="signed commit applied")

    unsigned = _push_password(setup, "unsigned-value")
    repo = wait_for(
        lambda: (r := setup.kube.repository()) and is_ready(r, "False") and r,
        what="Repository Ready=False",
    )
    cond = ready(repo) or {}
    assert cond["reason"] == "VerificationFailed"
    assert unsigned[:7] in cond["message"] or "sign" in cond["message"].lower()
    assert repo["status"]["artifact"]["commit"] == first
    time.sleep(1.5)  # several Sync intervals: nothing new may be applied
    assert _password(setup) == "signed-value-one"
    assert setup.kube.status()["lastAppliedRevision"] == f"main@sha1:{first}"

    second = push_signed("signed-value-two")
    wait_for(lambda: _password(setup) == "signed-value-two", what="next signed commit applied")
    wait_for(lambda: is_ready(setup.kube.repository()), what="Repository Ready again")
    assert setup.kube.repository()["status"]["artifact"]["commit"] == second


def test_a_verify_block_without_mode_checks_signatures(
    setup: Setup, operator_factory: Any, signer: tuple[GnupgHome, str]
) -> None:
    """The schema defaults verify.mode to HEAD; the operator must read a missing mode the same
    way (the emulator, like an object stored before the default, applies no schema defaults)."""
    ns = setup.namespace
    home, fingerprint = signer
    unsigned = _push_password(setup, "unsigned-value")
    setup.secret_object("signers", {"dev.asc": home.export_public(fingerprint)})
    setup.objects(repository_spec={"verify": {"secretRef": {"name": "signers"}}})
    assert "mode" not in setup.kube.repository()["spec"]["verify"] or (
        setup.kube.repository()["spec"]["verify"]["mode"] == "HEAD"  # a real API server
    )
    operator_factory(ns)
    repo = wait_for(
        lambda: (r := setup.kube.repository()) and is_ready(r, "False") and r,
        what="Repository Ready=False",
    )
    assert (ready(repo) or {})["reason"] == "VerificationFailed"
    assert unsigned[:7] in (ready(repo) or {})["message"] or "sign" in str(ready(repo)).lower()
    assert "artifact" not in (repo.get("status") or {})
    assert setup.kube.secret("db") is None


def test_without_a_ref_the_remote_head_is_followed(setup: Setup, operator_factory: Any) -> None:
    """No ref: the branch the remote's HEAD points at (here not main), not a schema default."""
    ns = setup.namespace
    _push_password(setup, "on-main")
    subprocess.run(["git", "-C", str(setup.repo.path), "checkout", "-q", "-b", "trunk"], check=True)
    setup.repo.write(
        {"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="on-trunk"))}
    )
    sha = setup.repo.commit("trunk")
    subprocess.run(
        ["git", "-C", str(setup.repo.path), "push", "-q", "origin", "trunk"], check=True
    )
    subprocess.run(
        ["git", "-C", str(setup.remote), "symbolic-ref", "HEAD", "refs/heads/trunk"], check=True
    )
    setup.objects(repository_spec={"ref": None})
    assert "ref" not in setup.kube.repository()["spec"]  # the schema has no default for it
    operator_factory(ns)
    wait_for(lambda: _password(setup) == "on-trunk", what="the remote HEAD's commit applied")
    assert setup.kube.repository()["status"]["artifact"]["commit"] == sha


def _hmac_hex(body: bytes) -> str:
    return hmac.new(HOOK_TOKEN.encode(), body, hashlib.sha256).hexdigest()


#: each host's headers for a push with ``body`` (issue 15: a GitLab delivery got 401)
HOSTS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "github": lambda body: {"X-GitHub-Event": "push", SIGNATURE_HEADER: f"sha256={_hmac_hex(body)}",
                            "X-GitHub-Delivery": str(uuid.uuid4())},
    "gitea": lambda body: {"X-Gitea-Event": "push", "X-Gitea-Signature": _hmac_hex(body),
                           "X-Gitea-Delivery": str(uuid.uuid4())},
    "forgejo": lambda body: {"X-Forgejo-Event": "push", "X-Forgejo-Signature": _hmac_hex(body),
                             "X-Forgejo-Delivery": str(uuid.uuid4())},
    "gitlab": lambda body: {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": HOOK_TOKEN,
                            "X-Gitlab-Event-UUID": str(uuid.uuid4())},
    "bitbucket": lambda body: {"X-Event-Key": "repo:push",
                               "X-Hub-Signature": f"sha256={_hmac_hex(body)}",
                               "X-Request-UUID": str(uuid.uuid4())},
}  # fmt: skip


def _post_as(port: int, ns: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hook/{ns}/app", data=body, method="POST",
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - http only
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_each_git_host_is_verified_with_its_own_scheme(
    setup: Setup, operator_factory: Any, host: str
) -> None:
    """GitHub, Gitea, Forgejo, GitLab and Bitbucket each sign (or, GitLab, send a token) their
    own way: a correct delivery is accepted and the push arrives; a signature over another body
    (GitLab: another token) is 401."""
    ns = setup.namespace
    thread = _serve_webhook(setup, operator_factory)
    sha = _push_password(setup, "hook-new-value")
    body = b'{"ref": "refs/heads/main", "after": "%s"}' % sha.encode()
    wrong = {
        k: v.replace(HOOK_TOKEN, "not-the-secret-at-all") for k, v in HOSTS[host](body).items()
    }
    if host != "gitlab":  # an HMAC header made with another secret
        wrong = HOSTS[host](body + b" ")

    assert _post_as(thread.ports.webhook, ns, body, wrong) == 401
    assert _post_as(thread.ports.webhook, ns, body, HOSTS[host](body)) == 202
    wait_for(lambda: _password(setup) == "hook-new-value", timeout=15, what="pushed value")
