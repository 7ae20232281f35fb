"""``sealed-gitops ui``: the read-only web view, served from this machine with your kubeconfig.

Why a command and not only an operator port: the view then makes every request with the
person's own credentials, so it cannot show more than ``kubectl get`` would show them, and it
needs nothing installed in the cluster. aiohttp, Jinja2 and the kubernetes client are imported
only when the command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from sealed_gitops.cli.conventions import kube_options
from sealed_gitops.cli.decryption_options import decryption_key_options

__all__ = ["ui"]


@click.command("ui")
@kube_options(
    namespace_help="Show only this namespace (for rights that end at one namespace); default: all."
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one (the URL is printed either way).",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The view has your cluster rights: keep it on loopback.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Another Host name to answer to (repeatable); others are refused (DNS rebinding).",
)
@click.option(
    "--repo",
    "checkouts",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Local checkout of a Repository (repeatable): the Secrets' audit timelines come "
    "from its history.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Use your keys to tell whether each live Secret value is the one in Git (keyed "
    "hashes in memory; no value is shown).",
)
@decryption_key_options(when="--compare")
def ui(
    *,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    port: int,
    bind: str,
    allow_hosts: tuple[str, ...],
    checkouts: tuple[Path, ...],
    compare: bool,
    age_identities: tuple[Path, ...],
    sealing_keys: tuple[Path, ...],
    gnupghome: Path | None,
) -> None:
    """A read-only web view of Syncs, KeyRings and Secrets' audit trails, with your rights."""
    from sealed_gitops.cluster import connect
    from sealed_gitops.plan import names
    from sealed_gitops.ui import Comparer, UiSettings, serve

    comparer = Comparer()
    if compare:
        from sealed_gitops.cli.build_cmds import load_decryption_keys

        keys = load_decryption_keys(
            age_identities=age_identities, sealing_keys=sealing_keys, gnupghome=gnupghome
        )
        comparer = Comparer(sops=keys.sops, sealing=keys.sealing or None)
    settings = UiSettings(
        namespace=names.namespace(namespace, field="--namespace") if namespace else None,
        bind=bind,
        port=port,
        extra_hosts=allow_hosts,
        checkouts=tuple(p.resolve() for p in checkouts),
        comparer=comparer,
    )
    client = connect(kubeconfig, context=context)

    def ready(url: str) -> None:
        click.echo(f"sealed-gitops ui: serving {url} (read-only; Ctrl-C stops)", err=False)

    try:
        serve(client, settings, ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
