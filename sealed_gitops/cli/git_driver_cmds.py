"""``sealed-gitops git-setup``, and the hidden commands git calls as drivers.

Why this module exists: ``git-setup`` wires git's textconv and merge-driver hooks to
``git-textconv`` and ``git-merge``, so that ``git diff`` shows which keys of an encrypted file
changed (values masked) and ``git merge`` of two branches that changed different values of one
SOPS file succeeds, the MAC recomputed with a key that opens the file. Git runs the two hidden
commands itself; no command here ever prints a value.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from sealed_gitops.audit import masked_text, merge_sops
from sealed_gitops.audit.snapshot import read_snapshot
from sealed_gitops.errors import AuditError, SealedGitopsError

__all__ = ["git_merge", "git_setup", "git_textconv"]

#: The driver's name in git's config and in ``.gitattributes``.
DRIVER = "sealed-gitops"
#: Patterns git-setup always writes: the usual names of encrypted files.
DEFAULT_PATTERNS = ("*.sops.yaml", "*.sops.yml", "*.sops.json", "*.enc.yaml", "*.enc.json")


def _driver_command() -> str:
    """How git should call us: this interpreter and module, so it works without PATH."""
    return shlex.join([sys.executable, "-m", "sealed_gitops"])


def _git(root: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AuditError(f"git {args[0]} failed") from exc
    return proc.stdout


def _encrypted_tracked_files(root: Path) -> list[str]:
    found = []
    for name in _git(root, "ls-files", "-z").split("\0"):
        if not name or not (root / name).is_file():
            continue
        if read_snapshot((root / name).read_bytes(), file=name).objects:
            found.append(name)
    return found


@click.command("git-setup")
@click.argument("repo", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    help="A .gitattributes pattern for encrypted files (repeatable), beyond the "
    "defaults and the encrypted files already tracked.",
)
@click.option("--command", "command", help="How git runs sealed-gitops (default: this one).")
def git_setup(*, repo: Path, patterns: tuple[str, ...], command: str | None) -> None:
    """Configure git diff (masked textconv) and git merge (SOPS-aware) for encrypted files."""
    root = Path(_git(repo, "rev-parse", "--show-toplevel").strip())
    run = command or _driver_command()
    settings = {
        f"diff.{DRIVER}.textconv": f"{run} git-textconv",
        f"merge.{DRIVER}.name": "sealed-gitops: merge SOPS files value by value",
        f"merge.{DRIVER}.driver": f"{run} git-merge %O %A %B %P",
    }
    for key, value in settings.items():
        _git(root, "config", "--local", key, value)
    wanted = [*DEFAULT_PATTERNS, *patterns]
    covered = set(wanted)
    wanted += [
        "/" + name.replace(" ", "[[:space:]]")
        for name in _encrypted_tracked_files(root)
        if name not in covered
    ]
    attributes = root / ".gitattributes"
    existing = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    present = {line.split()[0] for line in existing.splitlines() if line.strip()}
    lines = [f"{p} diff={DRIVER} merge={DRIVER}" for p in wanted if p not in present]
    if lines:
        prefix = "" if not existing or existing.endswith("\n") else "\n"
        attributes.write_text(existing + prefix + "\n".join(lines) + "\n", encoding="utf-8")
    click.echo(f"git config: {', '.join(settings)}; .gitattributes: {len(lines)} line(s) added")


@click.command("git-textconv", hidden=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def git_textconv(*, file: Path) -> None:
    """(for git) Print FILE with every encrypted value masked."""
    sys.stdout.buffer.write(masked_text(file.read_bytes(), file=file.name))
    sys.stdout.buffer.flush()


@click.command("git-merge", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("path")
def git_merge(*, base: Path, ours: Path, theirs: Path, path: str) -> None:
    """(for git) Merge THEIRS into OURS (BASE is the ancestor); PATH is the file's name."""
    from sealed_gitops.crypto.sops import is_sops_document

    ours_data, theirs_data = ours.read_bytes(), theirs.read_bytes()
    base_data = base.read_bytes() if base.exists() else b""
    if not (is_sops_document(ours_data, file=path) and is_sops_document(theirs_data, file=path)):
        # Not SOPS (a SealedSecret, or a plain file): git's own text merge is the right one.
        proc = subprocess.run(
            [
                "git",
                "merge-file",
                "-L",
                "ours",
                "-L",
                "base",
                "-L",
                "theirs",
                str(ours),
                str(base),
                str(theirs),
            ],
            check=False,
            timeout=60,
        )
        raise click.exceptions.Exit(0 if proc.returncode == 0 else 1)
    from sealed_gitops.keys.discovery import discover_keyring

    try:
        with discover_keyring() as ring:
            merged = merge_sops(
                base_data or None, ours_data, theirs_data, unwrapper=ring, file=path
            )
    except SealedGitopsError as exc:
        click.echo(
            f"sealed-gitops merge driver: cannot merge {path} ({exc.code}): {exc}; "
            "the MAC can only be recomputed with a key that opens the file; resolve by hand "
            "(sealed-gitops edit) or provide a key (SOPS_AGE_KEY_FILE, GNUPGHOME)",
            err=True,
        )
        raise click.exceptions.Exit(1) from None
    tmp = ours.with_name(ours.name + ".sg-merge")
    tmp.write_bytes(merged)
    os.replace(tmp, ours)
