"""``sealed-gitops build``: the pipeline without the cluster, printed.

Why a command of its own: it is how a person (or CI) sees exactly what the operator would apply for
a path or a remote revision, decrypted with their own keys, in a deterministic order. Secret values
are masked unless ``--show-secrets`` is given, which exists to pipe the output into
``kubectl apply -f -``; failures go to stderr, one line each, naming file, document and object.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml

from sealed_gitops.cli.conventions import output_option
from sealed_gitops.cli.decryption_options import decryption_key_options
from sealed_gitops.crypto.sealing_keys import load_private_keys
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.pipeline import BuildResult, FailurePolicy, build
from sealed_gitops.redact import MASK, is_registered, redact
from sealed_gitops.render.decrypt import DecryptionKeys, RenderedObject
from sealed_gitops.render.placement import Placement

if TYPE_CHECKING:
    from sealed_gitops.render import Failure

__all__ = [
    "build_command",
    "load_decryption_keys",
    "masked",
    "placement_options",
    "split_root",
]

F = TypeVar("F", bound=Callable[..., Any])


def placement_options(func: F) -> F:
    """``--target-namespace`` and ``--sync-namespace``: where objects land, as under a Sync.

    Sealed values are opened for the namespace their Secret lands in, so a preview of what a Sync
    with ``targetNamespace`` applies must know it, or it would open (or refuse) what the operator
    refuses (or opens).
    """
    func = click.option(
        "--sync-namespace",
        help="The Sync's namespace: where namespaced objects that name none land.",
    )(func)
    return click.option(
        "--target-namespace",
        help="As a Sync's targetNamespace: every namespaced object lands there, and sealed "
        "values must have been sealed for it.",
    )(func)


def placed(objects: list[RenderedObject], placement: Placement) -> list[RenderedObject]:
    """The objects with the namespaces they land in (unchanged without a placement)."""
    if placement == Placement():
        return objects
    return [dataclasses.replace(obj, data=placement.place(obj.data)) for obj in objects]


def masked(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with every Secret value, and every value that was encrypted in Git, masked.

    A Secret's ``data`` and ``stringData`` keep their key names only. Any other leaf whose value
    was decrypted (and so registered for redaction) is masked too: sops encrypts documents of any
    kind, and a SOPS-encrypted ConfigMap's values are as secret as a Secret's.
    """
    out: dict[str, Any] = _mask_registered(obj)
    if out.get("kind") != "Secret":
        return out
    for section in ("data", "stringData"):
        values = out.get(section)
        if isinstance(values, dict):
            out[section] = dict.fromkeys(values, MASK)
    return out


def _mask_registered(value: Any) -> Any:
    """A copy of ``value`` (mappings and lists copied) with its registered leaves masked."""
    if isinstance(value, dict):
        return {k: _mask_registered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_registered(v) for v in value]
    if isinstance(value, str | bytes):
        return MASK if is_registered(value) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return MASK if is_registered(str(value)) else value
    return value


def load_decryption_keys(
    *, age_identities: tuple[Path, ...], sealing_keys: tuple[Path, ...], gnupghome: Path | None
) -> DecryptionKeys:
    """SOPS keys the way sops finds them plus the flags; sealing keys from the given files."""
    ring = discover_keyring(age_identity_files=list(age_identities), gnupghome=gnupghome)
    private = []
    for path in sealing_keys:
        private.extend(load_private_keys(path.read_bytes(), source=str(path)))
    return DecryptionKeys(sops=ring, sealing=SealingKeyring(private))


def _emit(objects: list[RenderedObject], *, output: str, show_secrets: bool) -> str:
    return _dump([obj.data if show_secrets else masked(obj.data) for obj in objects], output=output)


def _dump(items: list[dict[str, Any]], *, output: str) -> str:
    if output == "json":
        doc = {"apiVersion": "v1", "kind": "List", "items": items}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    # libyaml's emitter when present: printing thousands of objects is most of build's time.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(
        items, Dumper=dumper, sort_keys=False, allow_unicode=True, explicit_start=True
    )


def _report(result: BuildResult) -> None:
    for failure in result.failures:
        click.echo(f"error: {redact(str(failure))}", err=True)


@click.command("build")
@click.argument("path", default=".")
@click.option("--repo", "repo_url", help="Fetch this Git URL instead of reading a local directory.")
@click.option("--ref", "ref_text", help="With --repo: branch, tag:NAME, semver:RANGE or a commit.")
@click.option("--show-secrets", is_flag=True, help="Print Secret values (for kubectl apply -f -).")
@output_option("yaml", "json")
@click.option(
    "--failure-policy",
    type=click.Choice([p.value for p in FailurePolicy]),
    default=FailurePolicy.ATOMIC.value,
    help="atomic: any failure fails the build; isolate: leave failing documents out.",
)
@click.option("--allow-plain-secrets", is_flag=True, help="Accept unencrypted Secrets in Git.")
@click.option(
    "--no-decrypt",
    is_flag=True,
    help="Render without decrypting (no key needed): every encrypted value is shown as "
    "<encrypted>, so the shape of each object is seen.",
)
@placement_options
@decryption_key_options()
def build_command(
    *,
    path: str,
    repo_url: str | None,
    ref_text: str | None,
    show_secrets: bool,
    output: str,
    failure_policy: str,
    allow_plain_secrets: bool,
    no_decrypt: bool,
    target_namespace: str | None,
    sync_namespace: str | None,
    age_identities: tuple[Path, ...],
    sealing_keys: tuple[Path, ...],
    gnupghome: Path | None,
) -> None:
    """Render and decrypt PATH (a local checkout, or --repo at --ref) as the operator would."""
    if no_decrypt and show_secrets:
        raise ConfigError("--show-secrets needs decryption: drop --no-decrypt")
    if ref_text and not repo_url:
        raise ConfigError("--ref needs --repo")
    artifact = None
    if repo_url:
        # Imported here: GitPython costs a local build ~40 ms of start-up for nothing.
        from sealed_gitops.source import Ref, fetch

        artifact = fetch(repo_url, Ref.parse(ref_text) if ref_text else None)
        root = artifact.path
    else:
        root, path = split_root(Path(path))
    placement = Placement(
        target_namespace=target_namespace or None, default_namespace=sync_namespace or None
    )
    if no_decrypt:
        _build_undecrypted(root, path, placement=placement, output=output,
                           allow_plain_secrets=allow_plain_secrets)  # fmt: skip
        return
    keys = load_decryption_keys(
        age_identities=age_identities, sealing_keys=sealing_keys, gnupghome=gnupghome
    )
    result = build(
        root=root,
        path=path,
        keys=keys,
        policy=FailurePolicy.parse(failure_policy),
        allow_plain_secrets=allow_plain_secrets,
        artifact=artifact,
        placement=placement,
    )
    objects = placed(result.objects, placement)
    click.echo(_emit(objects, output=output, show_secrets=show_secrets), nl=False)
    _report(result)
    if result.failures:
        raise click.exceptions.Exit(1)


def _build_undecrypted(
    root: Path, path: str, *, placement: Placement, output: str, allow_plain_secrets: bool
) -> None:
    """``build --no-decrypt``: exit 0 when the only failures say "a key is needed"."""
    # Imported here: the keyless preview is one flag of build, its modules are not needed else.
    from sealed_gitops.cli.preview import describe_failures, render_undecrypted
    from sealed_gitops.plan import order_key

    failures: list[Failure] = []
    objects = render_undecrypted(
        root, path, placement=placement, allow_plain_secrets=allow_plain_secrets, failures=failures
    )
    # In apply order; a document whose identity is encrypted too goes last, as written.
    known = sorted(((o.id, o) for o in objects if o.id is not None), key=lambda p: order_key(p[0]))
    ordered = [o for _, o in known] + [o for o in objects if o.id is None]
    click.echo(_dump([o.data for o in ordered], output=output), nl=False)
    lines, fatal = describe_failures(failures)
    for line in lines:
        click.echo(redact(line), err=True)
    if fatal:
        raise click.exceptions.Exit(1)


def split_root(target: Path) -> tuple[Path, str]:
    """The repository root for a local path (the enclosing Git work tree, else the path itself)."""
    target = target.resolve()
    if not target.exists():
        raise ConfigError(f"{target}: no such file or directory")
    start = target if target.is_dir() else target.parent
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate, str(target.relative_to(candidate)) or "."
    return start, "." if target.is_dir() else target.name
