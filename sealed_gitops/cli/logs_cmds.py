"""``sealed-gitops logs``: the operator's log lines about one Sync, Repository or KeyRing.

Why: "why did my Sync not apply?" often needs the operator's own words, and those sit in the log
of whichever replica leads, mixed with every other object's lines (Flux answers it with ``flux
logs --kind Kustomization --name app``). This command reads the operator pods' logs through the
API (the pods of the operator Deployment, found by its label selector, and their ``pods/NAME/log``
subresource), keeps the lines about the object asked for, and prints them in time order.
``--from-file`` reads a saved log instead (``kubectl logs ... > op.log``, an operator run outside
the cluster), and is the only way when the operator does not run in a pod.

How lines are matched, shown and escaped is :mod:`.log_lines`; reading the subresource is
:mod:`sealed_gitops.cluster.pod_logs`.
"""

from __future__ import annotations

import datetime as dt
import math
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sealed_gitops.cli.conventions import (
    DURATION,
    LazyModule,
    kube_options,
    output_option,
    split_ref,
)
from sealed_gitops.cli.log_lines import LogLine, ObjectRef, newest, parse_line
from sealed_gitops.errors import ConfigError, SealedGitopsError

if TYPE_CHECKING:
    from sealed_gitops import cluster
    from sealed_gitops.cluster import KubeClient, pod_logs
else:
    # Imported when the command runs: the kubernetes client is not needed for --help.
    cluster = LazyModule("sealed_gitops.cluster")
    pod_logs = LazyModule("sealed_gitops.cluster.pod_logs")

__all__ = ["DEFAULT_SELECTOR", "OPERATOR_NAMESPACE", "logs"]

#: Where deploy/ installs the operator, and the label every operator pod carries: the unsharded
#: Deployment's (component ``operator``) and each shard's (component ``operator-<shard>``), so
#: the lines about an object are found whichever shard reconciles it.
OPERATOR_NAMESPACE = "sealed-gitops-system"
DEFAULT_SELECTOR = "app.kubernetes.io/name=sealed-gitops"
#: Bytes of a saved log read at most (the newest lines are wanted: cut the file first).
MAX_FILE = 64 * 1024 * 1024

_KINDS = {"sync": "Sync", "repository": "Repository", "keyring": "KeyRing"}


def _read_file(path: Path) -> list[LogLine]:
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_FILE + 1)
    else:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ConfigError(f"{path}: over {MAX_FILE // (1024 * 1024)} MiB: keep the newest part")
    text = data.decode("utf-8", "replace")
    return [parse_line(raw) for raw in text.splitlines() if raw.strip()]


def _pods(client: KubeClient, namespace: str, selector: str) -> list[str]:
    from sealed_gitops.plan import names

    names.namespace(namespace, field="--operator-namespace")
    answer = client.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods",
        query={"labelSelector": selector},
        action="list",
        what=f"operator pods in {namespace}",
    )
    found = sorted(
        str((pod.get("metadata") or {}).get("name") or "") for pod in answer.get("items") or []
    )
    if not found:
        raise ConfigError(
            f"no operator pods in namespace {namespace} match {selector!r}: give "
            "--operator-namespace/--selector, or save the operator's log and use --from-file"
        )
    return found


def _read_pods(
    client: KubeClient, namespace: str, pods: list[str], *, since: float | None
) -> list[LogLine]:
    since_seconds = math.ceil(since) if since is not None else None
    lines: list[LogLine] = []
    for pod in pods:
        text = pod_logs.read_pod_log(client, namespace, pod, since_seconds=since_seconds)
        lines += [parse_line(raw, pod=pod) for raw in text.splitlines() if raw.strip()]
    return lines


def _follow(
    client: KubeClient, namespace: str, pods: list[str], *, since_seconds: int
) -> Iterator[LogLine]:
    """Lines of every pod as they come (one reader thread per pod), until all streams end."""
    found: queue.Queue[LogLine | SealedGitopsError | None] = queue.Queue(maxsize=10_000)

    def read(pod: str) -> None:
        try:
            for raw in pod_logs.follow_pod_log(client, namespace, pod, since_seconds=since_seconds):
                if raw.strip():
                    found.put(parse_line(raw, pod=pod))
        except SealedGitopsError as exc:
            found.put(exc)
        finally:
            found.put(None)

    for pod in pods:
        threading.Thread(target=read, args=(pod,), name=f"logs-{pod}", daemon=True).start()
    running = len(pods)
    while running:
        item = found.get()
        if item is None:
            running -= 1
        elif isinstance(item, SealedGitopsError):
            click.echo(f"warning: {item}", err=True)
        else:
            yield item


def _emit(lines: Iterable[LogLine], *, output: str, show_pod: bool) -> None:
    for line in lines:
        click.echo(line.json() if output == "json" else line.human(show_pod=show_pod))


@click.command("logs")
@click.argument("ref", metavar="[NAMESPACE/]NAME")
@click.option(
    "--kind",
    type=click.Choice(sorted(_KINDS)),
    default="sync",
    show_default=True,
    help="Which kind of object NAME is.",
)
@click.option("--since", type=DURATION, default=None, help="Only lines this recent (e.g. 10m).")
@click.option(
    "--tail", type=click.IntRange(min=0), default=None, help="Only the last N matching lines."
)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines until interrupted (Ctrl-C)."
)
@output_option(
    "text", "json", help="Output format: text, or json (each line one JSON object, pod added)."
)
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Read a saved operator log (- for stdin) instead of the operator pods' logs.",
)
@click.option(
    "--operator-namespace",
    default=OPERATOR_NAMESPACE,
    show_default=True,
    help="Namespace of the operator's pods.",
)
@click.option(
    "--selector",
    default=DEFAULT_SELECTOR,
    show_default=True,
    help="Label selector of the operator's pods (its Deployment's, see deploy/).",
)
@kube_options(namespace_help="Namespace of the object (then the argument is just NAME).")
def logs(
    *,
    ref: str,
    kind: str,
    since: float | None,
    tail: int | None,
    follow: bool,
    output: str,
    from_file: Path | None,
    operator_namespace: str,
    selector: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """The operator's log lines about one Sync (or Repository, KeyRing), like `flux logs`."""
    from sealed_gitops.plan import names  # here: plan/ imports yaml, which --help does not need

    kind_name = _KINDS[kind]
    ns, name = split_ref(ref, namespace, what=kind_name)
    wanted = ObjectRef(
        kind_name, names.namespace(ns, field="namespace"), names.object_name(name, field="name")
    )
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=since) if since is not None else None
    if from_file is not None:
        if follow:
            raise click.UsageError("--follow reads the operator pods: not with --from-file")
        lines = [line for line in _read_file(from_file) if line.about(wanted)]
        _emit(newest(lines, since=cutoff, tail=tail), output=output, show_pod=False)
        return
    client = cluster.connect(kubeconfig, context=context)
    try:
        pods = _pods(client, operator_namespace, selector)
        started = time.monotonic()
        read = _read_pods(client, operator_namespace, pods, since=since)
        shown = newest([line for line in read if line.about(wanted)], since=cutoff, tail=tail)
        _emit(shown, output=output, show_pod=len(pods) > 1)
        if not follow:
            return
        # From a little before the backlog was read; what it already printed is not repeated.
        printed = {(line.pod, line.raw) for line in shown}
        window = math.ceil(time.monotonic() - started) + 2
        fresh = (
            line
            for line in _follow(client, operator_namespace, pods, since_seconds=window)
            if line.about(wanted) and (line.pod, line.raw) not in printed
        )
        try:
            _emit(fresh, output=output, show_pod=len(pods) > 1)
        except KeyboardInterrupt:
            return
    finally:
        client.close()
