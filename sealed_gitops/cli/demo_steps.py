"""The steps of ``sealed-gitops demo``, in the order the story tells them.

Why apart from :mod:`.demo` (which starts the API server and the operator and runs these in
order): each step here does one thing a user would do (commit an encrypted file, change one
value, tamper with a commit, ask the audit) and checks what it claims, raising
:class:`~.demo_story.DemoFailed` when it does not hold. Values are compared by keyed hashes and
never printed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from sealed_gitops.audit import audit_history
from sealed_gitops.cli.demo_story import (
    ALICE,
    BOB,
    CONFIG_FILE,
    CRD_DIR,
    MALLORY,
    NS,
    PASSWORD_KEY,
    SECRET_FILE,
    VALUE_PREFIX,
    DemoFailed,
    Story,
    commit,
    git,
    manifest,
    ready_condition,
    run_cli,
)
from sealed_gitops.cluster import Discovery, wait_established

__all__ = [
    "alice_commits",
    "audit",
    "bob_changes",
    "create_objects",
    "install_crds",
    "make_repository",
    "prune",
    "store_cluster_key",
    "synced",
    "tamper",
]


def install_crds(story: Story) -> None:
    story.step("Install the Repository, Sync and KeyRing CRDs")
    discovery = Discovery(story.api)
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        name = str(doc["metadata"]["name"])
        # server-side apply: on a real cluster (--kubeconfig) they may be installed already
        story.api.request(
            "PATCH",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
            body=doc,
            query={"fieldManager": "sealed-gitops-demo", "force": "true"},
            content_type="application/apply-patch+yaml",
            action="apply",
            what=f"CustomResourceDefinition {name}",
        )
        names.append(name)
    if not names:
        raise DemoFailed(f"no CRDs found in {CRD_DIR}")
    for name in names:
        wait_established(story.api, discovery, name, timeout=story.timeout)
    story.ok(f"established: {', '.join(names)}")


def make_repository(story: Story, tmp: Path, cluster_key: str, people: dict[str, str]) -> Path:
    story.step("Create a Git repository and commit the public keys (.sops.yaml)")
    remote = tmp / "remote.git"
    remote.mkdir()
    git(remote, "init", "-q", "--bare", "-b", "main")
    alice = tmp / "alice"
    git(tmp, "clone", "-q", str(remote), str(alice))
    # An empty clone's branch follows init.defaultBranch on older git; the remote's is main.
    git(alice, "symbolic-ref", "HEAD", "refs/heads/main")
    recipients = [cluster_key, *people.values()]
    sops_yaml = {"creation_rules": [{"age": ",".join(recipients)}]}
    (alice / ".sops.yaml").write_text(yaml.safe_dump(sops_yaml), encoding="utf-8")
    (alice / "deploy").mkdir()
    commit(alice, "Add .sops.yaml: the cluster, Alice and Bob may decrypt", author=ALICE)
    story.ok(f"bare remote {remote.name}, Alice's clone; recipients: cluster, {', '.join(people)}")
    return remote


def store_cluster_key(story: Story, identity: str) -> None:
    story.step("Store the cluster's age key in a decryption Secret (Flux's layout)")
    story.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    story.post(
        f"/api/v1/namespaces/{NS}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sops-keys", "namespace": NS},
            "data": {"identity.agekey": base64.b64encode(identity.encode()).decode()},
        },
    )
    story.ok(f"Secret {NS}/sops-keys with entry identity.agekey (private key stays in-cluster)")


def alice_commits(story: Story, tmp: Path, password: str) -> str:
    story.step("Alice encrypts the database Secret with `sealed-gitops encrypt` and commits it")
    alice = tmp / "alice"
    run_cli(
        alice, "encrypt", "-", "--input-type", "yaml", "-w", SECRET_FILE, stdin=manifest(password)
    )
    text = (alice / SECRET_FILE).read_text(encoding="utf-8")
    if VALUE_PREFIX in text or "ENC[AES256_GCM" not in text:
        raise DemoFailed(f"{SECRET_FILE} is not encrypted")
    (alice / CONFIG_FILE).write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": NS},
                "data": {"level": "info"},
            }
        ),
        encoding="utf-8",
    )
    sha = commit(alice, "Add the database Secret and settings", author=ALICE)
    story.ok(f"commit {sha[:12]} by Alice: {SECRET_FILE} (encrypted), {CONFIG_FILE} (plain)")
    return sha


def create_objects(story: Story, remote: Path) -> None:
    story.step("Create a Repository and a Sync pointing at it")
    base = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}"
    story.post(
        f"{base}/repositories",
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"url": f"file://{remote}", "ref": {"branch": "main"}, "interval": "1s"},
        },
    )
    story.post(
        f"{base}/syncs",
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "repositoryRef": {"name": "app"},
                "path": "./deploy",
                "interval": "1m",
                "retryInterval": "1s",
                "prune": True,
                "decryption": {"secretRef": {"name": "sops-keys"}},
            },
        },
    )
    story.ok(f"Repository {NS}/app (file:// remote), Sync {NS}/app (path ./deploy, prune)")


def synced(story: Story, sha: str, password: str) -> None:
    story.step("The operator decrypts in memory and applies the Secret")
    data = story.wait(lambda: story.secret_data("db"), what=f"Secret {NS}/db")
    story.ok(f"Secret {NS}/db exists with keys: {', '.join(sorted(data))}")
    if story.digest(data.get("password", b"")) != story.digest(password.encode()):
        raise DemoFailed("the password in the cluster is not the one Alice encrypted")
    story.ok("password matches what Alice encrypted (compared by keyed hash; never shown)")
    revision = f"main@sha1:{sha}"
    story.wait(
        lambda: story.sync().get("status", {}).get("lastAppliedRevision") == revision,
        what="Sync Ready at Alice's commit",
    )
    story.ok(f"Sync Ready=True, revision {revision[:22]}…")


def bob_changes(story: Story, tmp: Path, remote: Path, bob_key: str, password: str) -> str:
    story.step("Bob rotates the password with `sealed-gitops set` (stable ciphertext)")
    bob = tmp / "bob"
    git(tmp, "clone", "-q", str(remote), str(bob))
    run_cli(
        bob,
        "set",
        SECRET_FILE,
        PASSWORD_KEY,
        "--value-stdin",
        stdin=json.dumps(password).encode(),
        env={"SOPS_AGE_KEY": bob_key},
    )
    stat = git(bob, "diff", "--stat")
    changed = [
        line[1:].split(":", 1)[0].strip()
        for line in git(bob, "diff", "-U0").splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    story.say(f"git diff --stat: {stat.splitlines()[0].strip() if stat else '(none)'}")
    story.say(f"lines changed: {', '.join(changed)}")
    # lastmodified has one-second resolution: within the same second it does not change.
    if sorted(set(changed) - {"lastmodified"}) != ["mac", "password"]:
        raise DemoFailed(f"expected only password, mac and lastmodified to change: {changed}")
    sha = commit(bob, "Rotate the database password", author=BOB)
    story.ok(f"commit {sha[:12]} by Bob: one value changed, username's ciphertext untouched")
    wanted = story.digest(password.encode())

    def arrived() -> dict[str, bytes] | None:
        data = story.secret_data("db") or {}
        return data if story.digest(data.get("password", b"")) == wanted else None

    story.wait(arrived, what="the new password in the cluster")

    def applied_event() -> str | None:
        # The operator's own account of the change: revision, author, object and changed keys.
        events = story.get(f"/api/v1/namespaces/{NS}/events") or {}
        for event in events.get("items") or []:
            message = str(event.get("message") or "")
            if event.get("reason") == "Applied" and sha in message:
                return message
        return None

    event = story.wait(applied_event, what="the operator's Applied Event")
    if "(changed: password)" not in event:
        raise DemoFailed(f"expected the Event to name only the password as changed: {event!r}")
    story.ok("operator applied it; its Event says:")
    for line in event.splitlines():
        story.say(f"  {line}")
    return sha


def prune(story: Story, tmp: Path) -> None:
    story.step("Bob removes the ConfigMap from Git; the operator prunes it")
    bob = tmp / "bob"
    git(bob, "rm", "-q", CONFIG_FILE)
    sha = commit(bob, "Remove the settings ConfigMap", author=BOB)
    story.ok(f"commit {sha[:12]}: {CONFIG_FILE} removed")
    story.wait(
        lambda: story.get(f"/api/v1/namespaces/{NS}/configmaps/settings") is None or None,
        what="ConfigMap settings pruned",
    )
    if story.secret_data("db") is None:
        raise DemoFailed("the Secret went away with the ConfigMap")
    story.ok(f"ConfigMap {NS}/settings pruned; Secret {NS}/db kept")


def tamper(story: Story, tmp: Path, password: str) -> None:
    story.step("Mallory pushes a tampered commit (one ciphertext byte flipped)")
    bob = tmp / "bob"
    path = bob / SECRET_FILE
    text = path.read_text(encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines()) if row.strip().startswith("password:"))
    lines = text.splitlines(keepends=True)
    at = lines[line].index("data:") + len("data:")
    flipped = "A" if lines[line][at] != "A" else "B"
    lines[line] = lines[line][:at] + flipped + lines[line][at + 1 :]
    path.write_text("".join(lines), encoding="utf-8")
    sha = commit(bob, "Update password", author=MALLORY)
    story.ok(f"commit {sha[:12]} by Mallory")
    cond = story.wait(
        lambda: (c := ready_condition(story.sync())) and c.get("status") == "False" and c,
        what="Ready=False",
    )
    story.ok(f"Sync Ready=False, reason {cond.get('reason')}")
    story.say(f"message: {str(cond.get('message', ''))[:160]}")
    if SECRET_FILE not in str(cond.get("message")):
        raise DemoFailed(f"the condition does not name {SECRET_FILE}")
    data = story.secret_data("db") or {}
    if story.digest(data.get("password", b"")) != story.digest(password.encode()):
        raise DemoFailed("the Secret changed after a tampered commit")
    story.ok(f"Secret {NS}/db still holds Bob's password (keyed hash compared)")


def audit(story: Story, tmp: Path) -> None:
    story.step("Who changed the database password? (`sealed-gitops audit`, no keys needed)")
    bob = tmp / "bob"
    result = audit_history(bob / SECRET_FILE)
    rows = [r for r in result.records if r.key == PASSWORD_KEY]
    for record in rows:
        who = record.author.split(" <")[0]
        story.say(
            f"{record.date[:19].replace('T', ' ')}  {who:<8} "
            f"{record.change.value:<8} {record.key}  {record.commit[:12]}"
        )
    authors = [r.author.split(" <")[0] for r in rows]
    if authors != ["Alice", "Bob", "Mallory"]:
        raise DemoFailed(f"expected Alice, Bob and Mallory in the audit, got {authors}")
    story.ok("Alice added it, Bob changed it, Mallory's change was refused by the operator")
