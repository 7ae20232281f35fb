"""``sealed-gitops demo``: the whole product on one machine, in about half a minute.

Why this module exists: it is the README's first command. A reader should see, without a cluster
or any setup, what the project is for: a secret encrypted with the CLI and committed to Git turns
into a Secret in the cluster, a second person changes one value and the diff shows exactly that,
what leaves Git is pruned, a tampered commit is refused while the old Secret stays, and the audit
answers who changed the password. Every step checks what it claims and the demo exits non-zero
when one does not hold, so it doubles as a smoke test of the assembled product.

Values are random per run, registered with the redaction layer, and never printed: arrival is
shown by comparing keyed hashes (HMAC with a key that lives only in this process). The only
plaintext file is the repository's ``.sops.yaml`` (public recipients); the manifests are
encrypted from stdin.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pyrage
import yaml
from rich.console import Console
from rich.markup import escape

from sealed_gitops.audit import audit_history
from sealed_gitops.cli.conventions import DURATION
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
from sealed_gitops.cluster import Discovery, connect, wait_established
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.redact import redact, register

__all__ = ["NS", "SECRET_FILE", "VALUE_PREFIX", "DemoFailed", "demo", "run_demo"]

# -- the steps --------------------------------------------------------------------------------


def _install_crds(story: Story) -> None:
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


def _make_repository(story: Story, tmp: Path, cluster_key: str, people: dict[str, str]) -> Path:
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


def _store_cluster_key(story: Story, identity: str) -> None:
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


def _alice_commits(story: Story, tmp: Path, password: str) -> str:
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


def _create_objects(story: Story, remote: Path) -> None:
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


def _synced(story: Story, sha: str, password: str) -> None:
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


def _bob_changes(story: Story, tmp: Path, remote: Path, bob_key: str, password: str) -> str:
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


def _prune(story: Story, tmp: Path) -> None:
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


def _tamper(story: Story, tmp: Path, password: str) -> None:
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


def _audit(story: Story, tmp: Path) -> None:
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


@contextlib.contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    """The operator's warnings (the refused commit) would interleave with the story."""
    root = logging.getLogger()
    level = root.level
    if not verbose:
        root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


def _use_cluster(
    story: Story, stack: contextlib.ExitStack, kubeconfig: Path | None, *, context: str | None
) -> Path:
    """The API server of the story: an emulator in this process, or the cluster ``kubeconfig``
    names (the story's namespace must not exist there; it is deleted at the end)."""
    from sealed_gitops.testing import KubeEmulator

    if kubeconfig is None:
        story.step("Start a Kubernetes API emulator (in this process)")
        api = stack.enter_context(KubeEmulator().run_in_thread())
        story.client = connect(api.kubeconfig_path)
        stack.callback(story.api.close)
        story.ok(f"API server at {api.host}:{api.port}")
        return api.kubeconfig_path
    story.step(f"Use the cluster of {kubeconfig}")
    story.client = connect(kubeconfig, context=context)
    stack.callback(story.api.close)
    if story.get(f"/api/v1/namespaces/{NS}") is not None:
        raise DemoFailed(
            f"namespace {NS} exists in that cluster: the demo makes its own and deletes it at "
            "the end, so it will not touch one it did not make"
        )
    stack.callback(_delete_namespace, story)
    story.ok(f"API server at {story.api.api.configuration.host}")
    return kubeconfig


def _delete_namespace(story: Story) -> None:
    with contextlib.suppress(SealedGitopsError):
        story.api.request(
            "DELETE", f"/api/v1/namespaces/{NS}", action="delete", what=f"namespace {NS}"
        )


def run_demo(
    console: Console,
    *,
    timeout: float,
    verbose: bool,
    kubeconfig: Path | None = None,
    context: str | None = None,
    hold: Callable[[Path, Path], None] | None = None,
) -> None:
    """The whole story; raises DemoFailed (or a SealedGitopsError) when a step fails.

    ``hold(kubeconfig, checkout)``, when given, runs after the last step while the API server,
    the operator and Bob's checkout are still there (the web view's browser tests look at them).
    """
    story = Story(console, timeout=timeout)
    keys = {who: pyrage.x25519.Identity.generate() for who in ("cluster", "Alice", "Bob")}
    first = VALUE_PREFIX + secrets.token_urlsafe(12)
    second = VALUE_PREFIX + secrets.token_urlsafe(12)
    for value in (first, second, *(str(k) for k in keys.values())):
        register(value)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet_logs(verbose))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sealed-gitops-demo-")))
        config = _use_cluster(story, stack, kubeconfig, context=context)
        _install_crds(story)
        people = {who: str(keys[who].to_public()) for who in ("Alice", "Bob")}
        remote = _make_repository(story, tmp, str(keys["cluster"].to_public()), people)
        _store_cluster_key(story, str(keys["cluster"]))
        sha = _alice_commits(story, tmp, first)
        _create_objects(story, remote)
        story.step("Start the operator (watching namespace team-a)")
        settings = OperatorSettings(
            namespaces=[NS],
            kubeconfig=str(config),
            context=context,
            cache_dir=tmp / "cache",
            metrics_port=0,
            webhook_port=0,
            leader_lease=None,
            min_backoff=0.5,
            max_backoff=2.0,
            allowed_schemes=frozenset({"file", "git", "ssh", "https", "http"}),
        )
        operator = stack.enter_context(OperatorThread(settings))
        story.ok(f"operator running; metrics on 127.0.0.1:{operator.ports.metrics}")
        _synced(story, sha, first)
        _bob_changes(story, tmp, remote, str(keys["Bob"]), second)
        _prune(story, tmp)
        _tamper(story, tmp, second)
        _audit(story, tmp)
        if hold is not None:
            hold(config, tmp / "bob")
        story.step(
            "Stop the operator and the emulator, remove the temporary directory"
            if kubeconfig is None
            else f"Stop the operator, delete namespace {NS}, remove the temporary directory"
        )
    story.ok(f"done; {tmp} removed" if not tmp.exists() else f"{tmp} left behind")
    if tmp.exists():
        raise DemoFailed(f"{tmp} was not removed")


@click.command("demo")
@click.option(
    "--timeout",
    default="20s",
    show_default=True,
    type=DURATION,
    help="How long each step may wait for the operator (e.g. 20s, 1m; plain seconds too).",
)
@click.option("--show-logs", is_flag=True, help="Let the operator's log lines through (stderr).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Tell the story on this cluster instead of an emulator in this process (it creates and "
    f"then deletes namespace {NS}, and installs or updates the CRDs).",
)
@click.option("--context", default=None, help="kubeconfig context (default: its current-context).")
@click.pass_context
def demo(
    ctx: click.Context,
    *,
    timeout: float,
    show_logs: bool,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Run the whole story on this machine: Git, a key, the operator, a tampered commit."""
    # Piped output keeps one line per event instead of wrapping at 80 columns.
    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    console.print(
        "[bold]sealed-gitops demo[/]: an encrypted secret in Git becomes a Secret "
        "in the cluster, and nothing else sees the plaintext."
    )
    started = time.monotonic()
    try:
        run_demo(
            console, timeout=timeout, verbose=show_logs, kubeconfig=kubeconfig, context=context
        )
    except (DemoFailed, SealedGitopsError) as exc:
        console.print(f"\n[bold red]✗ demo failed:[/] {escape(redact(str(exc)))}")
        ctx.exit(1)
    console.print(f"\n[bold green]✔ demo finished in {time.monotonic() - started:.1f}s[/]")
