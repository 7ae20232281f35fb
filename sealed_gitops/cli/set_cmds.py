"""``sealed-gitops set`` and ``unset``: change one value of an encrypted file in place, like sops.

Why apart from :mod:`.sops_cmds` (encrypt, decrypt): these two edit a file without ever writing
its plaintext anywhere; the engine (``crypto.sops``) decrypts only what it needs to recompute the
MAC, sets or removes the one value, and hands back the file's new bytes, which are written in
place. Their arguments and exit codes are sops' own (``sops set FILE PATH VALUE``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sealed_gitops.crypto.sops import parse_path, set_value, unset_value
from sealed_gitops.errors import ConfigError

from .options import (
    KeyInputs,
    emit,
    format_options,
    kept_format,
    key_options,
    read_input,
    store_settings,
)
from .sops_codes import INVALID_SET_FORMAT, INVALID_TREE_PATH, coded, fail, with_sops_codes

__all__ = ["set_cmd", "unset_cmd"]


def _value_json(value: str | None, value_file: Path | None, value_stdin: bool) -> str:
    given = sum(1 for v in (value is not None, value_file is not None, value_stdin) if v)
    if given != 1:
        raise ConfigError("give the value once: as VALUE, --value-file or --value-stdin")
    if value_file is not None:
        return value_file.read_text(encoding="utf-8")
    if value_stdin:
        return sys.stdin.read()
    return value if value is not None else ""


@click.command("set")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("path")
@click.argument("value", required=False)
@click.option(
    "--value-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the JSON value from this file (keeps it out of the process list).",
)
@click.option("--value-stdin", is_flag=True, help="Read the JSON value from stdin.")
@format_options
@key_options
@with_sops_codes()
def set_cmd(
    *,
    file: str,
    path: str,
    value: str | None,
    value_file: Path | None,
    value_stdin: bool,
    input_type: str | None,
    output_type: str | None,
    keys: KeyInputs,
) -> None:
    """Set the value at PATH in FILE, in place (VALUE is JSON, PATH like '["data"]["k"]')."""
    fmt = kept_format(file, input_type, output_type)
    value_json = _value_json(value, value_file, value_stdin)
    with coded(INVALID_TREE_PATH):
        parts = parse_path(path)
    try:
        json.loads(value_json)
    except ValueError:
        fail(INVALID_SET_FORMAT, f"{file}: the value is not valid JSON")
    with keys.keyring() as ring:
        result = set_value(
            read_input(file),
            parts,
            value_json,
            unwrapper=ring,
            file=file,
            fmt=fmt,
            stores=store_settings(file),
        )
    emit(result, source=file, output=None, in_place=True)


@click.command("unset")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("path")
@format_options
@key_options
@with_sops_codes()
def unset_cmd(
    *,
    file: str,
    path: str,
    input_type: str | None,
    output_type: str | None,
    keys: KeyInputs,
) -> None:
    """Remove PATH from FILE, in place."""
    fmt = kept_format(file, input_type, output_type)
    with coded(INVALID_TREE_PATH):
        parts = parse_path(path)
    with keys.keyring() as ring:
        result = unset_value(
            read_input(file), parts, unwrapper=ring, file=file, fmt=fmt, stores=store_settings(file)
        )
    emit(result, source=file, output=None, in_place=True)
