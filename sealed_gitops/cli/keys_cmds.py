"""``sealed-gitops keys fetch|list|rotate|retire`` and the ``keys`` group itself.

Why these live together: they are one workflow around a KeyRing's public side (fetch the public
keys, rotate, retire), and they share how the cluster is found (:mod:`.keyring_target`). What
``keys fetch`` changes in ``.sops.yaml`` is :mod:`sealed_gitops.keys.sops_config_edit`. The two
commands that move private keys, ``keys backup`` and ``keys restore``, are in
:mod:`.keys_backup` and joined to the group here; ``sealed-gitops reencrypt`` is in
:mod:`.reencrypt_cmds`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from sealed_gitops.cli.conventions import DURATION, output_option, rows_json
from sealed_gitops.cli.options import atomic_write
from sealed_gitops.errors import ConfigError, SealedGitopsError
from sealed_gitops.keys.cluster_keys import (
    RETIRE_ANNOTATION,
    ROTATE_ANNOTATION,
)
from sealed_gitops.keys.dependencies import (
    KeyRef,
    only_key_users,
    scan_repository,
    users_of,
)
from sealed_gitops.keys.repo_keys import KeyRingRecord, active_key, write_public_keys
from sealed_gitops.keys.retention import DECRYPTING_STATES
from sealed_gitops.keys.sops_config_edit import plan_sops_config

from .keyring_target import Target, cluster_options, find_target, published_keys
from .keys_backup import backup, restore
from .retire_check import blockers

__all__ = ["KEYS_LIST_FIELDS", "keys"]


# -- keys ----------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """The cluster's keys: fetch, list, rotate, retire, back up, restore."""


@keys.command("fetch")
@cluster_options
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--rule-regex",
    "rule_regexes",
    multiple=True,
    help=".sops.yaml rule (its exact path_regex) to add the recipient to; repeatable. "
    "Default: the rules holding this KeyRing's keys, else every rule.",
)
@click.option("--no-sops-config", is_flag=True, help="Leave .sops.yaml alone.")
@click.option(
    "--timeout", type=DURATION, default="60s", show_default=True, help="How long to wait for keys."
)
def fetch(
    *,
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
    directory: Path | None,
    rule_regexes: tuple[str, ...],
    no_sops_config: bool,
    timeout: float,
) -> None:
    """Write the KeyRing's public keys into keys/CLUSTER and add its recipient to .sops.yaml."""
    target, record = find_target(keyring, kubeconfig, context, Path.cwd(), directory)
    directory = directory or (record.directory if record else None)
    if directory is None:
        directory = Path("keys") / target.name
    body = target.wait(
        lambda b: bool(published_keys(b)), timeout=timeout, what="for published keys"
    )
    published = published_keys(body)
    active = active_key(published, keyring=f"{target.namespace}/{target.name}")
    config = directory.resolve().parent.parent / ".sops.yaml"
    change = None
    if not no_sops_config:
        # Planned before anything is written: a refusal leaves the repository as it was.
        change = plan_sops_config(
            config.read_text(encoding="utf-8") if config.exists() else None,
            recipient=str(active["ageRecipient"]),
            keyring_recipients=[str(k.get("ageRecipient")) for k in published],
            keyring=f"{target.namespace}/{target.name}",
            rule_regexes=rule_regexes,
            file=str(config),
        )
    write_public_keys(
        directory,
        namespace=target.namespace,
        name=target.name,
        context=target.context,
        status_keys=published,
    )
    if change is not None and change.changed:
        atomic_write(config, change.text.encode("utf-8"))
        for line in [*change.summary, *change.diff]:
            click.echo(line)
    elif change is not None:
        click.echo(f"{config}: unchanged")
    click.echo(f"{directory}: active key {active['fingerprint'][:16]} ({active['ageRecipient']})")


def _status_refs(target: Target | None, record: KeyRingRecord | None) -> list[dict[str, Any]]:
    if target is not None:
        try:
            return published_keys(target.get())
        except SealedGitopsError:
            if record is None:
                raise
    return list(record.keys) if record else []


#: Fields of each row of ``keys list --output json``, in this order (a stable interface for tools):
#: the key's fingerprint (full), its state, when it was created, its public age recipient, and how
#: many files under --repo use it. Public data only: no private key ever reaches this command.
KEYS_LIST_FIELDS = ("fingerprint", "state", "created", "ageRecipient", "files")


@keys.command("list")
@cluster_options
@click.option("--repo", type=click.Path(exists=True, path_type=Path), default=Path("."))
@output_option("table", "json")
def list_cmd(
    *, keyring: str | None, kubeconfig: str | None, context: str | None, repo: Path, output: str
) -> None:
    """Each key's fingerprint, state, created, and how many files under --repo use it."""
    target, record = find_target(keyring, kubeconfig, context, repo)
    published = _status_refs(target, record)
    files = scan_repository(repo, [KeyRef.from_status(k) for k in published])
    rows: list[dict[str, Any]] = [
        {
            "fingerprint": str(key.get("fingerprint") or ""),
            "state": str(key.get("state") or ""),
            "created": str(key.get("created") or ""),
            "ageRecipient": str(key.get("ageRecipient") or ""),
            "files": len(users_of(files, str(key.get("fingerprint")))),
        }
        for key in published
    ]
    if output == "json":
        click.echo(rows_json(rows, KEYS_LIST_FIELDS))
        return
    click.echo(f"{'FINGERPRINT':<18} {'STATE':<9} {'CREATED':<21} FILES")
    for row in rows:
        click.echo(
            f"{row['fingerprint'][:16]:<18} {row['state']:<9} {row['created']:<21} {row['files']}"
        )


@keys.command("rotate")
@cluster_options
@click.option(
    "--timeout",
    type=DURATION,
    default="2m",
    show_default=True,
    help="How long to wait for the key.",
)
def rotate_cmd(
    *, keyring: str | None, kubeconfig: str | None, context: str | None, timeout: float
) -> None:
    """Ask the operator for a new active key and wait until it is published."""
    target, _ = find_target(keyring, kubeconfig, context, Path.cwd())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    target.annotate({ROTATE_ANNOTATION: stamp})
    body = target.wait(
        lambda b: (b.get("status") or {}).get("lastRotateRequest") == stamp,
        timeout=timeout,
        what="for the rotation",
    )
    active = str((body.get("status") or {}).get("activeFingerprint"))
    click.echo(f"new active key {active[:16]}; next: keys fetch, then reencrypt")


@keys.command("retire")
@click.argument("fingerprint")
@cluster_options
@click.option(
    "--repo",
    type=click.Path(exists=True, path_type=Path),
    default=Path("."),
    help="Working tree to warn about: files here that still need the key (the cluster decides).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Retire even while a Sync's published revision needs the key or cannot be checked "
    "(its next reconcile of such a file fails).",
)
@click.option(
    "--timeout", type=DURATION, default="60s", show_default=True, help="How long to wait."
)
def retire(
    *,
    fingerprint: str,
    keyring: str | None,
    kubeconfig: str | None,
    context: str | None,
    repo: Path,
    force: bool,
    timeout: float,
) -> None:
    """Retire a key; refused while a Sync's published revision still needs it.

    Decided from what the cluster applies: every Sync that decrypts with this KeyRing, at the
    revision its Repository published, as the operator recorded it (status.decryptionKeys).
    """
    target, _ = find_target(keyring, kubeconfig, context, repo)
    body = target.get()
    published = published_keys(body)
    wanted = fingerprint.strip().lower()
    matches = [k for k in published if str(k.get("fingerprint")).startswith(wanted)]
    if len(matches) != 1:
        raise ConfigError(f"{'no' if not matches else 'more than one'} key matches {fingerprint}")
    key = matches[0]
    fp = str(key["fingerprint"])
    if key.get("state") == "active":
        raise ConfigError(f"key {fp[:16]} is the active key: rotate and re-encrypt first")
    if key.get("state") in ("retired", "deleted"):
        click.echo(f"key {fp[:16]} is already {key.get('state')}")
        return
    usable = [str(k["fingerprint"]) for k in published if k.get("state") in DECRYPTING_STATES]
    # The cluster decides (issue 15): what each Sync's published revision needs, not this tree.
    blocking, using = blockers(target.client, body, fingerprint=fp, usable=usable)
    if blocking and not force:
        raise ConfigError(
            f"refused: key {fp[:16]} of {target.describe()} is still needed, or its use cannot "
            "be checked:\n  "
            + "\n  ".join(b.message for b in blocking)
            + "\n(re-encrypt with sealed-gitops reencrypt, commit, push and reconcile; "
            "--force retires anyway)"
        )
    for blocker in blocking:
        click.echo(f"warning: --force: {blocker.message}", err=True)
    _warn_local(repo, published, fp, usable)
    current = ((body.get("metadata") or {}).get("annotations") or {}).get(RETIRE_ANNOTATION, "")
    listed = [x for x in current.split(",") if x]
    if fp not in listed:
        target.annotate({RETIRE_ANNOTATION: ",".join([*listed, fp])})
    target.wait(
        lambda b: any(
            k.get("fingerprint") == fp and k.get("state") == "retired" for k in published_keys(b)
        ),
        timeout=timeout,
        what="for the retirement",
    )
    click.echo(f"key {fp[:16]} retired ({using} Sync(s) use {target.describe()})")


def _warn_local(repo: Path, published: list[dict[str, Any]], fp: str, usable: list[str]) -> None:
    """A warning (never a refusal) for working-tree files that still need the key: pushed as
    they are, they would fail to decrypt once it is retired."""
    files = scan_repository(repo, [KeyRef.from_status(k) for k in published])
    needing = only_key_users(files, fp, usable=usable)
    if needing:
        more = f" and {len(needing) - 10} more" if len(needing) > 10 else ""
        click.echo(
            f"warning: {len(needing)} file(s) under {repo} can only be decrypted with key "
            f"{fp[:16]}: {', '.join(needing[:10])}{more}; re-encrypt them before you push them",
            err=True,
        )


# Moving private keys is a command apart (:mod:`.keys_backup`), but a subcommand of ``keys``.
keys.add_command(backup)
keys.add_command(restore)
