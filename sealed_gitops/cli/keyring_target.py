"""Which KeyRing a ``keys`` or ``reencrypt`` command acts on, and a client for its cluster.

Why a module: every key command finds the cluster the same way: ``--keyring`` and
``--kubeconfig``/``--context`` when given, else the ``keys/*/keyring.yaml`` that ``keys fetch``
wrote into the repository (which pins the kubeconfig context, so a later change of kubectl's
default context does not point a rotation at another cluster).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from sealed_gitops.errors import ApiNotFound, ConfigError
from sealed_gitops.keys.repo_keys import KeyRingRecord, find_records, read_record
from sealed_gitops.plan import names

if TYPE_CHECKING:
    from sealed_gitops.cluster import KubeClient

__all__ = [
    "API",
    "Target",
    "cluster_options",
    "find_target",
    "keyring_ref",
    "parse_ref",
    "published_keys",
]

API = "/apis/sealed-gitops.io/v1alpha1"


class Target:
    """The KeyRing a command acts on, and a client for its cluster."""

    def __init__(self, namespace: str, name: str, client: KubeClient, context: str | None) -> None:
        self.namespace, self.name, self.client, self.context = namespace, name, client, context

    @property
    def path(self) -> str:
        return f"{API}/namespaces/{self.namespace}/keyrings/{self.name}"

    def get(self) -> dict[str, Any]:
        try:
            return self.client.request("GET", self.path, action="get", what=self.describe())
        except ApiNotFound as exc:
            raise ConfigError(f"{self.describe()} not found") from exc

    def annotate(self, annotations: dict[str, str | None]) -> None:
        self.client.request(
            "PATCH",
            self.path,
            body={"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
            action="annotate",
            what=self.describe(),
        )

    def describe(self) -> str:
        return f"KeyRing {self.namespace}/{self.name}"

    def wait(self, check: Callable[[dict[str, Any]], bool], *, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            body = self.get()
            if check(body):
                return body
            if time.monotonic() > deadline:
                raise ConfigError(f"{self.describe()}: timed out after {timeout:.0f}s {what}")
            time.sleep(0.2)


def parse_ref(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not namespace or not name:
        raise ConfigError(f"--keyring {text!r} must be NAMESPACE/NAME")
    return namespace, name


def _records(repo: Path, directory: Path | None) -> list[KeyRingRecord]:
    """The record in ``directory`` when it has one, else every record the repository holds."""
    if directory is not None and (directory / "keyring.yaml").is_file():
        return [read_record(directory / "keyring.yaml")]
    return find_records(repo)


def _record_of(repo: Path, directory: Path | None, ref: str) -> KeyRingRecord | None:
    """The record of KeyRing ``ref`` (in ``directory`` when given), or None."""
    return next((r for r in _records(repo, directory) if r.ref == ref), None)


def _only(records: list[KeyRingRecord]) -> KeyRingRecord | None:
    if len(records) > 1:
        names = ", ".join(str(r.directory) for r in records)
        raise ConfigError(f"several keys/ directories ({names}): give --keyring or --dir")
    return records[0] if records else None


def find_target(
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
    repo: Path,
    directory: Path | None = None,
) -> tuple[Target, KeyRingRecord | None]:
    if keyring:
        namespace, name = parse_ref(keyring)
        # Several clusters' keys/ directories are normal; --keyring picks its own record.
        record = _record_of(repo, directory, f"{namespace}/{name}")
    elif (record := _only(_records(repo, directory))) is not None:
        namespace, name = record.namespace, record.name
    else:
        raise ConfigError("no --keyring given and no keys/*/keyring.yaml found (keys fetch)")
    # Both go into the API path: --keyring, and keyring.yaml from the repository (any commit).
    origin = "--keyring" if keyring else "keyring.yaml: keyring"
    names.namespace(namespace, field=f"{origin} namespace")
    names.object_name(name, field=f"{origin} name")
    # As kubectl: $KUBECONFIG (its first file) when no --kubeconfig is given.
    config = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or None
    # The effective context, so keyring.yaml pins the cluster even if kubectl's default changes.
    ctx = context or (record.context if record else None) or _current_context(config)
    # Imported here: the kubernetes client is heavy, and `keys ... --help` needs none of it.
    from sealed_gitops.cluster import connect

    return Target(namespace, name, connect(config, context=ctx), ctx), record


def _current_context(config: str | None) -> str | None:
    """The kubeconfig's ``current-context`` (None when unreadable: the client then decides)."""
    path = Path(config) if config else Path.home() / ".kube" / "config"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    current = raw.get("current-context") if isinstance(raw, dict) else None
    return str(current) if current else None


def cluster_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--keyring``, ``--kubeconfig``, ``--context`` and ``-n/--namespace``.

    ``-n NS --keyring NAME`` is ``--keyring NS/NAME``; the command receives ``keyring`` only.
    """

    @functools.wraps(func)
    def with_namespace(*args: Any, keyring: str | None, namespace: str | None, **kw: Any) -> Any:
        return func(*args, keyring=keyring_ref(keyring, namespace), **kw)

    wrapped: Callable[..., Any] = with_namespace
    wrapped = click.option(
        "-n", "--namespace", help="The KeyRing's namespace (then --keyring is just NAME)."
    )(wrapped)
    wrapped = click.option(
        "--keyring",
        "keyring",
        metavar="[NS/]NAME",
        help="The KeyRing (default: keys/*/keyring.yaml).",
    )(wrapped)
    wrapped = click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
    )(wrapped)
    return click.option("--context", help="kubeconfig context (default: keyring.yaml's).")(wrapped)


def keyring_ref(keyring: str | None, namespace: str | None) -> str | None:
    """``--keyring`` with ``-n`` folded in: ``NS/NAME`` (or None: take keys/*/keyring.yaml)."""
    if namespace is None:
        return keyring
    if not keyring:
        raise ConfigError("-n/--namespace needs --keyring NAME")
    ns, sep, _ = keyring.partition("/")
    if not sep:
        return f"{namespace}/{keyring}"
    if ns != namespace:
        raise ConfigError(f"--keyring {keyring} is in namespace {ns}, but -n says {namespace}")
    return keyring


def published_keys(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(k) for k in (body.get("status") or {}).get("keys") or []]
