"""``sealed-gitops updatekeys`` and ``rotate``: change who can open a file, or its data key.

Why apart from the other sops commands: these two decide about recipients rather than values.
``updatekeys`` re-wraps the SAME data key for the recipients of the file's ``.sops.yaml`` rule, so
no value's ciphertext changes and the Git diff shows only the ``sops`` block; it lists what it
adds and removes first. ``rotate`` makes a new data key on purpose (after a key may have leaked)
and re-encrypts every value for the file's own recipients, optionally adding or removing age
recipients on the way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from sealed_gitops.crypto.sops import MasterKey, Metadata, rotate, update_keys
from sealed_gitops.errors import ConfigError, InputError
from sealed_gitops.keys.recipients import KeyFactory, key_groups_from_rule
from sealed_gitops.keys.sops_binary import FALLBACK_KINDS

from .options import (
    KeyInputs,
    display_name,
    emit,
    format_options,
    kept_format,
    key_options,
    matching_rule,
    output_options,
    read_input,
    store_settings,
)
from .sops_cmds import config_option, read_metadata

__all__ = ["rotate_cmd", "updatekeys"]


def _show_changes(old: Sequence[str], new: Sequence[str], *, file: str) -> bool:
    # PGP fingerprints are hex in either case, depending on who wrote the file.
    old_ids = {k.casefold() for k in old}
    new_ids = {k.casefold() for k in new}
    added = [k for k in new if k.casefold() not in old_ids]
    removed = [k for k in old if k.casefold() not in new_ids]
    if not added and not removed:
        click.echo(f"{file}: already up to date", err=True)
        return False
    click.echo(f"{file}: the data key will be wrapped for:", err=True)
    for key_id in added:
        click.echo(f"  + {key_id}", err=True)
    for key_id in removed:
        click.echo(f"  - {key_id}", err=True)
    return True


@click.command("updatekeys")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@format_options
@key_options
def updatekeys(
    *,
    file: str,
    yes: bool,
    config: Path | None,
    input_type: str | None,
    output_type: str | None,
    keys: KeyInputs,
) -> None:
    """Re-wrap FILE's data key for the recipients of its .sops.yaml rule (values unchanged)."""
    fmt = kept_format(file, input_type, output_type)
    rule, found = matching_rule(file, config)
    if rule is None:
        raise ConfigError(
            f"no creation rule in {found} matches" if found else "no .sops.yaml found", file=file
        )
    data = read_input(file)
    meta = read_metadata(data, fmt=fmt, file=file)
    groups = key_groups_from_rule(rule, factory=keys.factory())
    new_ids = [mk.key_id for group in groups for mk in group]
    same_threshold = (rule.shamir_threshold or 0) == (meta.shamir_threshold or 0) or len(groups) < 2
    if not _show_changes(meta.key_ids(), new_ids, file=file) and same_threshold:
        return
    interactive = sys.stdin.isatty()
    if interactive and not yes and not click.confirm("Apply these changes?", err=True):
        raise click.exceptions.Exit(1)
    with keys.keyring() as ring:
        result = update_keys(
            data,
            unwrapper=ring,
            key_groups=groups,
            threshold=rule.shamir_threshold,
            file=file,
            fmt=fmt,
            stores=store_settings(file, config),
        )
    emit(result, source=file, output=None, in_place=True)


def _recipients_of(meta: Metadata, factory: KeyFactory, *, file: str) -> list[list[MasterKey]]:
    groups: list[list[MasterKey]] = []
    for group in meta.key_groups:
        keys: list[MasterKey] = []
        for stanza in group:
            if stanza.kind in FALLBACK_KINDS:
                raise ConfigError(
                    f"rotate cannot re-wrap {stanza.kind} keys: use sops rotate", file=file
                )
            keys.append(factory.make(stanza.key_id, kind=stanza.kind))
        groups.append(keys)
    return groups


@click.command("rotate")
@click.argument("file")
@click.option(
    "--add-age",
    multiple=True,
    metavar="RECIPIENT",
    help="Also wrap the new data key for this age recipient (first key group).",
)
@click.option(
    "--rm-age",
    multiple=True,
    metavar="RECIPIENT",
    help="Stop wrapping the data key for this age recipient.",
)
@format_options
@output_options
@key_options
def rotate_cmd(
    *,
    file: str,
    add_age: Sequence[str],
    rm_age: Sequence[str],
    input_type: str | None,
    output_type: str | None,
    output: Path | None,
    in_place: bool,
    keys: KeyInputs,
) -> None:
    """Give FILE a new data key and re-encrypt every value, for the same recipients."""
    name = display_name(file)
    fmt = kept_format(file, input_type, output_type, name=name)
    data = read_input(file)
    meta = read_metadata(data, fmt=fmt, file=name)
    factory = keys.factory()
    groups = _recipients_of(meta, factory, file=name)
    removed = {r.strip() for r in rm_age}
    unknown = removed - {mk.key_id for group in groups for mk in group}
    if unknown:
        raise InputError(f"--rm-age: not a recipient of this file: {sorted(unknown)[0]}", file=name)
    groups = [[mk for mk in group if mk.key_id not in removed] for group in groups]
    present = {mk.key_id for group in groups for mk in group}
    groups[0].extend(factory.age(r) for r in add_age if r.strip() not in present)
    if any(not group for group in groups):
        raise InputError("rotate would leave a key group without recipients", file=name)
    with keys.keyring() as ring:
        result = rotate(
            data,
            unwrapper=ring,
            key_groups=groups,
            threshold=meta.shamir_threshold,
            file=name,
            fmt=fmt,
            stores=store_settings(file),
        )
    emit(result, source=file, output=output, in_place=in_place)
