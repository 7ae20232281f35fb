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
encrypted from stdin. This module sets the stage (the API server, the operator) and runs the
steps of :mod:`.demo_steps` in order; what they share is :mod:`.demo_story`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pyrage
from rich.console import Console
from rich.markup import escape

from sealed_gitops.cli.conventions import DURATION
from sealed_gitops.cli.demo_story import (
    NS,
    SECRET_FILE,
    VALUE_PREFIX,
    DemoFailed,
    Story,
)
from sealed_gitops.cluster import connect
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.redact import redact, register

from . import demo_steps as steps

__all__ = ["NS", "SECRET_FILE", "VALUE_PREFIX", "DemoFailed", "demo", "run_demo"]


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
        steps.install_crds(story)
        people = {who: str(keys[who].to_public()) for who in ("Alice", "Bob")}
        remote = steps.make_repository(story, tmp, str(keys["cluster"].to_public()), people)
        steps.store_cluster_key(story, str(keys["cluster"]))
        sha = steps.alice_commits(story, tmp, first)
        steps.create_objects(story, remote)
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
        steps.synced(story, sha, first)
        steps.bob_changes(story, tmp, remote, str(keys["Bob"]), second)
        steps.prune(story, tmp)
        steps.tamper(story, tmp, second)
        steps.audit(story, tmp)
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
