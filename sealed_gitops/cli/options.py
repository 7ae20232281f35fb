"""Options and I/O shared by the SOPS commands: key inputs, output targets, .sops.yaml lookup.

Why one module: every SOPS command takes the same key flags (``--age-identity``, ``--gnupghome``,
``--vault-token``), writes the same way (stdout, ``-w/--output-file FILE`` or ``--in-place``) and
finds ``.sops.yaml`` the same way. Keeping those rules here means ``encrypt`` and ``edit`` cannot
drift apart on where a file lands or which keys are used.

Writes go to a temporary file beside the target and are renamed over it, so an interrupted command
never leaves half a file, and ciphertext never shares a directory with a plaintext temp file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from sealed_gitops.cli.conventions import output_file_option
from sealed_gitops.crypto.patterns import compile_pattern
from sealed_gitops.crypto.sops import (
    DEFAULT_STORES,
    FORMATS,
    CreationRule,
    StoreSettings,
    load_creation_rules,
    load_store_settings,
    match_creation_rule,
    sops_format,
)
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.keys.pgp import GnuPG
from sealed_gitops.keys.recipients import KeyFactory
from sealed_gitops.keys.vault_addresses import resolve_vault_token

__all__ = [
    "STDIN",
    "KeyInputs",
    "atomic_write",
    "display_name",
    "emit",
    "file_format",
    "find_sops_config",
    "format_options",
    "kept_format",
    "key_options",
    "matching_rule",
    "output_options",
    "read_input",
    "store_settings",
]

#: The file name that means "read standard input".
STDIN = "-"

#: What sops names its configuration file (it accepts both spellings).
CONFIG_NAMES = (".sops.yaml", ".sops.yml")

#: How far up the tree the configuration is searched for (sops stops at 100 levels too).
MAX_CONFIG_DEPTH = 100

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class KeyInputs:
    """Where private keys come from, beyond what sops' environment variables provide."""

    age_identities: tuple[Path, ...] = ()
    gnupghome: Path | None = None
    vault_token: str | None = None

    def keyring(self) -> KeyRing:
        """The keyring for decryption: environment (as sops reads it) plus the explicit flags."""
        return discover_keyring(
            age_identity_files=self.age_identities,
            gnupghome=self.gnupghome,
            vault_token=self.vault_token,
            interactive_gpg=sys.stdin.isatty(),
        )

    def factory(self) -> KeyFactory:
        """Makes master keys for encryption with the same GnuPG home and Vault token."""
        home = str(self.gnupghome) if self.gnupghome is not None else None
        return KeyFactory(
            gnupg_home=GnuPG(home=home, interactive=sys.stdin.isatty()),
            vault_token=resolve_vault_token(self.vault_token),
        )


def key_options(func: F) -> F:
    """``--age-identity``, ``--gnupghome`` and ``--vault-token``; the command gets ``keys``.

    The three flags arrive as one :class:`KeyInputs` keyword argument, so each command passes
    them on as a unit instead of rebuilding it.
    """

    @functools.wraps(func)
    def with_keys(
        *args: Any,
        age_identities: Sequence[Path],
        gnupghome: Path | None,
        vault_token: str | None,
        **kwargs: Any,
    ) -> Any:
        keys = KeyInputs(tuple(age_identities), gnupghome, vault_token or None)
        return func(*args, keys=keys, **kwargs)

    decorators = [
        click.option(
            "--age-identity",
            "age_identities",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="An age identity file (repeatable), in addition to SOPS_AGE_KEY(_FILE/_CMD).",
        ),
        click.option(
            "--gnupghome",
            type=click.Path(file_okay=False, path_type=Path),
            help="GnuPG home holding PGP keys (default: $GNUPGHOME, else ~/.gnupg).",
        ),
        click.option(
            "--vault-token",
            help="Vault token for hc_vault transit keys (default: $VAULT_TOKEN, ~/.vault-token).",
        ),
    ]
    wrapped: Callable[..., Any] = with_keys
    for decorator in reversed(decorators):
        wrapped = decorator(wrapped)
    return cast(F, wrapped)


def output_options(func: F) -> F:
    """``-w/--output-file FILE`` and ``-i/--in-place``; the command gets ``output``.

    ``-o/--output`` is a format in every command (here the same as ``--output-type``), so the
    file takes ``-w``: sops' ``--output FILE`` would silently write a file named ``json``.
    """
    func = click.option("-i", "--in-place", is_flag=True, help="Replace FILE with the result.")(
        func
    )
    return output_file_option(dest="output")(func)


def format_options(func: F) -> F:
    """``--input-type`` / ``-o/--output/--output-type`` (default: from the file's extension)."""
    choice = click.Choice(list(FORMATS))
    func = click.option(
        "-o",
        "--output",
        "--output-type",
        "output_type",
        type=choice,
        help="Format of the output (default: the input's).",
    )(func)
    return click.option("--input-type", type=choice, help="Format of FILE.")(func)


def display_name(path: str) -> str:
    """How errors name the input: the path as given, or ``<stdin>``."""
    return "<stdin>" if path == STDIN else path


def file_format(path: str, explicit: str | None) -> str:
    """The store format as sops picks it: the flag, else the extension (``.yaml``/``.yml``,
    ``.json``, ``.env``, ``.ini``; any other name is the binary store; stdin is YAML)."""
    return sops_format(None if path == STDIN else path, explicit)


def store_settings(file: str, config: Path | None = None) -> StoreSettings:
    """The ``stores:`` section of the ``.sops.yaml`` that applies to ``file`` (defaults if none)."""
    path = locate_config(file, config)
    if path is None:
        return DEFAULT_STORES
    try:
        return load_store_settings(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise exc.with_file(str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8", file=str(path)) from exc


def kept_format(
    file: str, input_type: str | None, output_type: str | None, *, name: str | None = None
) -> str:
    """The store format of a command that rewrites FILE in its own format.

    Only ``decrypt`` converts; here ``--output-type`` may only repeat the input's format, and
    anything else is refused before a key is touched. ``name`` is how errors name the file.
    """
    fmt = file_format(file, input_type)
    if output_type and output_type != fmt:
        raise ConfigError(
            f"--output-type {output_type} differs from the input's {fmt}: convert after "
            "decrypting (only decrypt changes the format)",
            file=name or file,
        )
    return fmt


def read_input(path: str) -> bytes:
    if path == STDIN:
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def atomic_write(target: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``target`` through a temporary file in its directory and a rename.

    An existing file keeps its permission bits; a new one gets the umask's default, or 0600 when
    ``private`` (plaintext the user asked for with ``decrypt -w``).
    """
    directory = target.parent if str(target.parent) else Path(".")
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o600 if private else 0o666 & ~umask
    # Imported here: tempfile pulls in shutil, bz2 and lzma (~2 ms of start-up), and a decrypt
    # to stdout writes no file (issue 16, start-up).
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        # Name the file the user asked for, not our temporary one.
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def emit(
    data: bytes,
    *,
    source: str,
    output: Path | None,
    in_place: bool,
    private: bool = False,
) -> None:
    """Send a command's result to stdout, ``-w FILE`` or back into ``source``."""
    if output is not None and in_place:
        raise ConfigError("--output-file and --in-place exclude each other")
    if in_place:
        if source == STDIN:
            raise ConfigError("--in-place needs a file, not standard input")
        atomic_write(Path(source), data, private=private)
    elif output is not None:
        atomic_write(output, data, private=private)
    else:
        stream = sys.stdout.buffer
        stream.write(data)
        stream.flush()


def find_sops_config(start: Path) -> Path | None:
    """The nearest ``.sops.yaml`` in ``start`` or one of its parents."""
    current = start.resolve()
    for _ in range(MAX_CONFIG_DEPTH):
        for name in CONFIG_NAMES:
            candidate = current / name
            if candidate.is_file():
                return candidate
        if current.parent == current:
            return None
        current = current.parent
    return None


def locate_config(file: str, explicit: Path | None) -> Path | None:
    """``--config``, else the nearest one above the file, else the nearest one above the cwd.

    sops itself searches from the working directory; starting at the file as well means a
    command run from outside the repository still finds the repository's rules.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    if file != STDIN:
        found = find_sops_config(Path(file).resolve().parent)
        if found is not None:
            return found
    return find_sops_config(Path.cwd())


def matching_rule(file: str, config: Path | None) -> tuple[CreationRule | None, Path | None]:
    """The first creation rule matching ``file`` and the config it came from.

    ``path_regex`` is matched against the path relative to the config's directory, as sops does,
    and also against the absolute path (for rules written with leading directories).
    """
    path = locate_config(file, config)
    if path is None:
        return None, None
    try:
        rules = load_creation_rules(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise exc.with_file(str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8", file=str(path)) from exc
    if file == STDIN:
        candidates = ["stdin"]
    else:
        absolute = Path(file).resolve()
        try:
            relative = absolute.relative_to(path.resolve().parent).as_posix()
        except ValueError:
            relative = absolute.as_posix()
        candidates = [relative, absolute.as_posix()]
    for candidate in candidates:
        rule = match_creation_rule(rules, candidate)
        if rule is not None:
            return rule, path
    return None, path


def check_regex(value: str | None, *, flag: str) -> None:
    if value:  # the engine (RE2, Go's syntax) that will match it, so sops' patterns behave alike
        compile_pattern(value, what=flag, error=ConfigError)
