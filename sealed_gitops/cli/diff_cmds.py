"""``sealed-gitops diff``: what applying a path would change in the cluster, never a value.

Why: Flux compares SOPS Secrets by key names only and Argo CD leaves Secrets out of its diffs, so
reviewers cannot see that a password changed. Here every object is compared with its live version
as server-side apply would leave it; a Secret is shown key by key as added, changed, removed or
unchanged (decided by comparing digests), and nothing of a value is printed. With ``--sync`` the
objects get the Sync's ownership labels (as the operator would apply them) and what would be
pruned is listed too. Exit codes follow ``kubectl diff``: 0 no differences, 1 differences, 2 error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealed_gitops.cli.build_cmds import load_decryption_keys, placed, split_root
from sealed_gitops.cli.conventions import DURATION, output_option, rows_json
from sealed_gitops.cli.decryption_options import decryption_key_options
from sealed_gitops.errors import ApiNotFound, ConfigError, NoMatchingKey, SealedGitopsError
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.plan import Inventory, ObjectId
from sealed_gitops.plan.diff import object_diff
from sealed_gitops.redact import redact
from sealed_gitops.render import DocKind
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.placement import Placement

if TYPE_CHECKING:
    from sealed_gitops.cli.preview import CipherDifference
    from sealed_gitops.cluster import SyncRef

__all__ = ["DIFF_FIELDS", "Difference", "diff_command"]

EXIT_DIFFERENT = 1
EXIT_ERROR = 2


#: Fields of each entry of ``diff --output json``, in this order (a stable interface for tools):
#: the object's kind, API group, namespace and name; ``create``, ``update`` or ``prune``; and the
#: same redacted text the plain output shows (Secrets by key name and change kind, never a value).
#: Without a key (``--base``, ``--no-decrypt``, ``--in-cluster``) an encrypted object's ``keys``
#: lists its key names as ``added``/``changed``/``removed``/``unknown`` and ``note`` says
#: "re-encrypted, values unknown" where the ciphertext cannot tell; both are null otherwise.
DIFF_FIELDS = ("kind", "group", "namespace", "name", "action", "diff", "keys", "note")


@dataclass(frozen=True)
class Difference:
    """One object that applying would change."""

    id: ObjectId
    action: str
    text: str

    def row(self) -> dict[str, str | None]:
        return {
            "kind": self.id.kind,
            "group": self.id.group,
            "namespace": self.id.namespace,
            "name": self.id.name,
            "action": self.action,
            "diff": redact(self.text),
            "keys": None,
            "note": None,
        }


def _sync_inventory(client: Any, sync: SyncRef) -> Inventory:
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{sync.namespace}/syncs/{sync.name}"
    try:
        found = client.request(
            "GET", path, action="read", what=f"Sync {sync.namespace}/{sync.name}"
        )
    except ApiNotFound:
        return Inventory()
    return Inventory.from_status((found.get("status") or {}).get("inventory"))


def _parse_sync(text: str | None) -> SyncRef | None:
    if not text:
        return None
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name:
        raise ConfigError(f"--sync {text!r}: expected NAMESPACE/NAME")
    from sealed_gitops.cluster import SyncRef

    return SyncRef(namespace, name)


def _differences(
    *,
    path: str,
    repo_url: str | None,
    ref_text: str | None,
    kubeconfig: str | None,
    context: str | None,
    sync_text: str | None,
    keys: DecryptionKeys,
    allow_plain_secrets: bool,
    target_namespace: str | None = None,
    namespace: str | None = None,
) -> list[Difference]:
    if ref_text and not repo_url:
        raise ConfigError("--ref needs --repo")  # as in build: never ignore a flag silently
    # Imported here: the kubernetes client and GitPython are heavy; `diff --help` needs neither.
    from sealed_gitops.cluster import Discovery, connect, read_live
    from sealed_gitops.source import Ref, fetch

    sync = _parse_sync(sync_text)
    if repo_url:
        root, sub = fetch(repo_url, Ref.parse(ref_text) if ref_text else None).path, path
    else:
        root, sub = split_root(Path(path))
    # Where the objects land, as under that Sync: its namespace for files that name none.
    placement = Placement(
        target_namespace=target_namespace or None,
        default_namespace=namespace or (sync.namespace if sync else None),
    )
    result = build(
        root=root,
        path=sub,
        keys=keys,
        policy=FailurePolicy.ATOMIC,
        allow_plain_secrets=allow_plain_secrets,
        placement=placement,
    )
    client = connect(kubeconfig, context=context)
    try:
        desired: dict[ObjectId, dict[str, Any]] = {}
        # Any object that was encrypted in Git (a SOPS ConfigMap too) is diffed key by key.
        encrypted: set[ObjectId] = set()
        for obj in placed(result.objects, placement):
            data = sync.prepare(obj.data, source_path=obj.file) if sync else obj.data
            oid = ObjectId.of(data)
            desired[oid] = data
            if obj.source in (DocKind.SOPS, DocKind.SEALED):
                encrypted.add(oid)
        versions = {oid: str(obj.get("apiVersion", "")) for oid, obj in desired.items()}
        previous = _sync_inventory(client, sync) if sync else Inventory()
        gone = [e for e in previous.entries if e.id not in desired]
        for entry in gone:
            group = entry.id.group
            versions[entry.id] = f"{group}/{entry.version}" if group else entry.version
        live = read_live(client, Discovery(client), versions, sync=sync)
        found = []
        for oid in sorted(desired):
            text = object_diff(desired[oid], live.get(oid), sensitive=oid in encrypted or None)
            if text:
                action = "update" if oid in live else "create"
                found.append(Difference(oid, action, text))
        for entry in gone:
            if entry.id in live:
                found.append(Difference(entry.id, "prune", object_diff(None, live[entry.id])))
        return found
    finally:
        client.close()


@click.command("diff")
@click.argument("path", default=".")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Defaults to $KUBECONFIG.")
@click.option("--context", help="kubeconfig context (default: its current-context).")
@click.option(
    "-n",
    "--namespace",
    help="Where objects that name no namespace land (default: the --sync's namespace), "
    "as for a Sync in that namespace.",
)
@click.option("--repo", "repo_url", help="Fetch this Git URL instead of reading a local directory.")
@click.option("--ref", "ref_text", help="With --repo: branch, tag:NAME, semver:RANGE or a commit.")
@click.option("--sync", "sync_text", help="NAMESPACE/NAME: compare as this Sync would apply.")
@click.option(
    "--base",
    "base_rev",
    help="Compare the working tree with this Git revision instead of the cluster (no key "
    "needed: encrypted values are compared by ciphertext).",
)
@click.option(
    "--no-decrypt",
    is_flag=True,
    help="With --sync: compare encrypted objects by ciphertext with the revision the Sync "
    "applied (no key needed; also what diff --sync does when a key is missing).",
)
@click.option(
    "--in-cluster",
    is_flag=True,
    help="With --sync: the operator computes the key-by-key diff in the cluster, where the "
    "keys are; the answer names keys only.",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="60s",
    show_default=True,
    help="How long --in-cluster waits for the operator's answer.",
)
@click.option("--allow-plain-secrets", is_flag=True)
@click.option(
    "--target-namespace",
    help="As the Sync's targetNamespace: every namespaced object lands there, and sealed values "
    "must have been sealed for it.",
)
@decryption_key_options()
@output_option("text", "json")
def diff_command(
    *,
    path: str,
    kubeconfig: str | None,
    context: str | None,
    repo_url: str | None,
    ref_text: str | None,
    sync_text: str | None,
    base_rev: str | None,
    no_decrypt: bool,
    in_cluster: bool,
    timeout: float,
    allow_plain_secrets: bool,
    target_namespace: str | None,
    namespace: str | None,
    age_identities: tuple[Path, ...],
    sealing_keys: tuple[Path, ...],
    gnupghome: Path | None,
    output: str,
) -> None:
    """Show what applying PATH would change in the cluster (Secrets by key, never values).

    Without keys: --base REV compares with a Git revision, --sync with --no-decrypt (or a
    missing key) compares ciphertexts with what the Sync applied, and --sync with --in-cluster
    asks the operator. Every form names keys, never values or ciphertexts.
    """
    try:
        if in_cluster:
            from sealed_gitops.cli.diff_in_cluster import request_cluster_diff

            if not sync_text:
                raise ConfigError("--in-cluster needs --sync NAMESPACE/NAME")
            if base_rev or no_decrypt or repo_url:
                # never ignore a flag silently: the operator compares its published revision
                raise ConfigError("--in-cluster compares what the Sync's Repository publishes: "
                                  "no --base, --no-decrypt or --repo")  # fmt: skip
            found: Sequence[Difference | CipherDifference] = request_cluster_diff(
                kubeconfig=kubeconfig, context=context, sync_text=sync_text, timeout=timeout
            )
        elif base_rev or no_decrypt:
            found = _keyless(
                path=path,
                repo_url=repo_url,
                ref_text=ref_text,
                base_rev=base_rev,
                kubeconfig=kubeconfig,
                context=context,
                sync_text=sync_text,
                allow_plain_secrets=allow_plain_secrets,
                target_namespace=target_namespace,
                namespace=namespace,
            )
        else:
            found = _keyed_or_keyless(
                path=path,
                repo_url=repo_url,
                ref_text=ref_text,
                kubeconfig=kubeconfig,
                context=context,
                sync_text=sync_text,
                allow_plain_secrets=allow_plain_secrets,
                target_namespace=target_namespace,
                namespace=namespace,
                keys=load_decryption_keys(
                    age_identities=age_identities, sealing_keys=sealing_keys, gnupghome=gnupghome
                ),
            )
    except SealedGitopsError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        raise click.exceptions.Exit(EXIT_ERROR) from None
    if output == "json":
        click.echo(rows_json([d.row() for d in found], DIFF_FIELDS))
    else:
        for difference in found:
            click.echo(_text(difference))
    raise click.exceptions.Exit(EXIT_DIFFERENT if found else 0)


def _text(difference: Difference | CipherDifference) -> str:
    if isinstance(difference, Difference):
        return redact(difference.text)
    from sealed_gitops.cli.preview import key_lines

    head = f"{difference.action} {difference.label}"
    lines = [head, *(["  " + ln for ln in difference.text.splitlines()] if difference.text else [])]
    lines.extend(key_lines(difference.keys, prefix="  "))
    return redact("\n".join(lines))


def _keyed_or_keyless(*, keys: DecryptionKeys, **options: Any) -> list[Any]:
    """The keyed diff; with --sync and a missing key, the keyless one (said on stderr)."""
    try:
        return _differences(keys=keys, **options)
    except NoMatchingKey as exc:
        if not options.get("sync_text"):
            raise ConfigError(
                f"{exc}: without the key, compare with a Git revision (--base REV), with what a "
                "Sync applied (--sync NS/NAME --no-decrypt), or ask the operator (--sync NS/NAME "
                "--in-cluster)"
            ) from None
        click.echo(
            f"note: {redact(str(exc))}: comparing encrypted objects by ciphertext with the "
            "revision the Sync applied (values unknown; --in-cluster asks the operator)",
            err=True,
        )
        return _keyless(base_rev=None, **options)


def _keyless(
    *,
    path: str,
    repo_url: str | None,
    ref_text: str | None,
    base_rev: str | None,
    kubeconfig: str | None,
    context: str | None,
    sync_text: str | None,
    allow_plain_secrets: bool,
    target_namespace: str | None,
    namespace: str | None,
) -> list[Any]:
    from sealed_gitops.cli.diff_keyless import git_differences, sync_differences

    sync = _parse_sync(sync_text)
    placement = Placement(
        target_namespace=target_namespace or None,
        default_namespace=namespace or (sync.namespace if sync else None),
    )
    if base_rev:
        if repo_url:
            raise ConfigError("--base compares with a revision of the local repository: no --repo")
        root, sub = split_root(Path(path))
        return list(
            git_differences(
                root=root,
                sub=sub,
                base=base_rev,
                placement=placement,
                allow_plain_secrets=allow_plain_secrets,
            )
        )
    if sync is None:
        raise ConfigError("--no-decrypt compares with what a Sync applied: give --sync NS/NAME")
    if ref_text and not repo_url:
        raise ConfigError("--ref needs --repo")
    from sealed_gitops.cluster import connect

    if repo_url:
        from sealed_gitops.source import Ref, fetch

        root, sub = fetch(repo_url, Ref.parse(ref_text) if ref_text else None).path, path
    else:
        root, sub = split_root(Path(path))
    client = connect(kubeconfig, context=context)
    try:
        return list(
            sync_differences(
                client=client,
                sync=sync,
                root=root,
                sub=sub,
                repo_url=repo_url,
                placement=placement,
                allow_plain_secrets=allow_plain_secrets,
            )
        )
    finally:
        client.close()
