"""``sealed-gitops version`` and ``sealed-gitops completion bash|zsh|fish``: the CLI about itself.

Why a module apart: both are about the tool, not about keys or clusters, and both must stay cheap
(``completion`` is sourced from shell start-up files). ``version`` asks the cluster only for the
operator's Deployment, and a cluster that cannot be reached is an answer ("operator: not
reachable"), not an error: the client's version is still worth printing.

The client's version lives in one place, ``sealed_gitops.__version__`` (``--version`` prints the
same). The operator's is what its Deployment runs: the ``app.kubernetes.io/version`` label when
the install sets one, else the tag of the operator container's image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sealed_gitops import __version__
from sealed_gitops.cli.conventions import dump_json, kube_options, output_option

__all__ = ["OPERATOR_SELECTOR", "VERSION_FIELDS", "completion", "operator_version", "version"]

#: Labels of the operator's Deployment (deploy/deployment.yaml).
OPERATOR_SELECTOR = "app.kubernetes.io/name=sealed-gitops,app.kubernetes.io/component=operator"
#: Where deploy/ installs the operator.
OPERATOR_NAMESPACE = "sealed-gitops-system"
#: The variable click's completion reads, from the program name (as click derives it).
COMPLETE_VAR = "_SEALED_GITOPS_COMPLETE"
PROG_NAME = "sealed-gitops"

#: Fields of ``version --output json`` (a stable interface for tools): the client's version, the
#: operator's (null when not known), the Deployment it came from, and why it is not known.
VERSION_FIELDS = ("client", "operator", "deployment", "error")


def _image_tag(image: str) -> str | None:
    """``repo/sealed-gitops:0.1.0`` -> ``0.1.0``; a digest or no tag -> None."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _version_of(deployment: dict[str, Any]) -> str | None:
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    if labels.get("app.kubernetes.io/version"):
        return str(labels["app.kubernetes.io/version"])
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    ordered = sorted(containers, key=lambda c: c.get("name") != "operator")
    for container in ordered:
        tag = _image_tag(str(container.get("image") or ""))
        if tag:
            return tag
    return None


def operator_version(
    *, kubeconfig: Path | None, context: str | None, namespace: str
) -> dict[str, Any]:
    """``{"operator", "deployment", "error"}`` from the cluster; never raises for a cluster that
    is absent, unreachable or refuses: that is reported in ``error``."""
    # Imported here: the kubernetes client is heavy, and `version` without a cluster needs none.
    from sealed_gitops.cluster import connect
    from sealed_gitops.errors import SealedGitopsError
    from sealed_gitops.redact import redact

    try:
        client = connect(kubeconfig, context=context, timeout=5.0)
    except SealedGitopsError as exc:
        return {"operator": None, "deployment": None, "error": f"not reachable: {redact(str(exc))}"}
    try:
        found = client.request(
            "GET",
            f"/apis/apps/v1/namespaces/{namespace}/deployments",
            query={"labelSelector": OPERATOR_SELECTOR},
            action="list",
            what=f"Deployments in {namespace}",
        )
    except SealedGitopsError as exc:
        return {"operator": None, "deployment": None, "error": f"not reachable: {redact(str(exc))}"}
    finally:
        client.close()
    items = sorted(found.get("items") or [], key=lambda d: str(d["metadata"]["name"]))
    if not items:
        return {"operator": None, "deployment": None, "error": f"not installed in {namespace}"}
    name = f"{namespace}/{items[0]['metadata']['name']}"
    found_version = _version_of(items[0])
    error = None if found_version else "its image has no tag and no app.kubernetes.io/version"
    return {"operator": found_version, "deployment": name, "error": error}


@click.command("version")
@kube_options(namespace_help=f"Namespace of the operator (default: {OPERATOR_NAMESPACE}).")
@click.option("--client", "client_only", is_flag=True, help="Only the client's version.")
@output_option("text", "json")
def version(
    *,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    client_only: bool,
    output: str,
) -> None:
    """The client's version, and the operator's when the cluster can be reached."""
    row: dict[str, Any] = {"client": __version__, "operator": None, "deployment": None}
    row["error"] = "not asked (--client)" if client_only else None
    if not client_only:
        row.update(
            operator_version(
                kubeconfig=kubeconfig, context=context, namespace=namespace or OPERATOR_NAMESPACE
            )
        )
    if output == "json":
        click.echo(dump_json({field: row[field] for field in VERSION_FIELDS}))
        return
    click.echo(f"client: {row['client']}")
    if client_only:
        return
    if row["operator"]:
        click.echo(f"operator: {row['operator']} ({row['deployment']})")
    else:
        click.echo(f"operator: {row['error']}")


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, *, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash: eval "$(sealed-gitops completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(sealed-gitops completion zsh)"    (in ~/.zshrc)
    fish: sealed-gitops completion fish > ~/.config/fish/completions/sealed-gitops.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion for {shell}")
    root = ctx.find_root().command
    click.echo(cls(root, {}, PROG_NAME, COMPLETE_VAR).source())
