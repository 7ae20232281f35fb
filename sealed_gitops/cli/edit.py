"""``sealed-gitops edit FILE``: change a SOPS file in an editor without leaving plaintext on disk.

Why it is careful: the editor needs a path to a plaintext copy, and that copy is the one moment a
secret could land on a disk. It is written to a memory-backed file (``/dev/shm``, else an anonymous
``memfd`` reached through ``/proc/self/fd``) with mode 0600, and removed as soon as the editor
exits, on errors and on SIGTERM/SIGHUP too. Saving re-encrypts with the file's own data key and
the previous ciphertexts (``reencrypt_plain``), so only the values that changed differ in Git; an
unchanged buffer writes nothing, and a buffer that no longer parses leaves the original untouched.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import click

from sealed_gitops.crypto.sops import FORMATS, decrypt_document, reencrypt_plain
from sealed_gitops.crypto.sops.document import dump_tree
from sealed_gitops.errors import ConfigError, InputError

from .options import KeyInputs, atomic_write, file_format, key_options, store_settings
from .sops_codes import FILE_NOT_MODIFIED, NO_EDITOR, fail, with_sops_codes

__all__ = ["edit", "editor_command", "plaintext_buffer"]

#: Memory-backed directory used for the plaintext copy when it is available and writable.
SHM_DIR = Path("/dev/shm")  # noqa: S108 - deliberate: memory-backed, file created 0600


#: What sops 3.11 looks for on PATH when neither SOPS_EDITOR nor EDITOR is set, in order.
FALLBACK_EDITORS = ("vim", "nano", "vi")


def editor_command(
    env: Mapping[str, str] | None = None, *, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """``$SOPS_EDITOR``, then ``$EDITOR`` (as sops), then ``$VISUAL``; split like a shell would
    (``code --wait``). None set: the first of vim, nano, vi on PATH; none there exits 201."""
    environ = os.environ if env is None else env
    for name in ("SOPS_EDITOR", "EDITOR", "VISUAL"):
        text = environ.get(name)
        if not text:
            continue
        try:
            argv = shlex.split(text)
        except ValueError:
            fail(NO_EDITOR, f"${name} is not a valid command line")
        if not argv:
            fail(NO_EDITOR, f"${name} is empty")
        return argv
    for candidate in FALLBACK_EDITORS:
        if which(candidate):
            return [candidate]
    fail(
        NO_EDITOR,
        "no editor available: set SOPS_EDITOR or EDITOR, or install one of "
        + ", ".join(FALLBACK_EDITORS),
    )


class _Interrupted(Exception):
    """Raised from a signal handler so that ``finally`` blocks remove the plaintext copy."""


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into exceptions while plaintext exists outside memory."""
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: nothing to install
            previous[sig] = signal.signal(sig, _raise_on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def plaintext_buffer(data: bytes, *, suffix: str) -> Iterator[Path]:
    """A 0600 memory-backed file holding ``data``; gone when the block exits, however it exits."""
    if SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK):
        fd, name = tempfile.mkstemp(dir=SHM_DIR, prefix="sealed-gitops-edit-", suffix=suffix)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.close(fd)
            fd = -1
            yield Path(name)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        raise ConfigError("no memory-backed place for the plaintext copy (/dev/shm or memfd)")
    fd = memfd_create("sealed-gitops-edit", 0)  # inheritable: the editor opens it by path
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.set_inheritable(fd, True)
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _run_editor(argv: Sequence[str], path: Path) -> None:
    pass_fds: tuple[int, ...] = ()
    if str(path).startswith("/proc/self/fd/"):
        pass_fds = (int(path.name),)
    try:
        proc = subprocess.run([*argv, str(path)], check=False, pass_fds=pass_fds)
    except OSError:
        fail(NO_EDITOR, f"cannot start the editor {argv[0]!r}; nothing saved")
    if proc.returncode != 0:
        # sops: "Could not run editor", 201
        fail(NO_EDITOR, f"the editor {argv[0]!r} exited with {proc.returncode}; nothing saved")


@click.command("edit")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input-type", type=click.Choice(list(FORMATS)), help="Format of FILE.")
@key_options
@with_sops_codes()
def edit(
    *,
    file: str,
    input_type: str | None,
    keys: KeyInputs,
) -> None:
    """Open a decrypted copy of FILE in $EDITOR and re-encrypt it on save (stable ciphertext)."""
    fmt = file_format(file, input_type)
    argv = editor_command()
    original = Path(file).read_bytes()
    with keys.keyring() as ring:
        doc = decrypt_document(original, unwrapper=ring, file=file, fmt=fmt)
        stores = store_settings(file)
        plain = dump_tree(doc.branches, fmt=doc.fmt, stores=stores)
        with _signals_raise():
            try:
                with plaintext_buffer(plain, suffix=Path(file).suffix or f".{fmt}") as path:
                    _run_editor(argv, path)
                    edited = path.read_bytes()
            except _Interrupted as exc:
                raise InputError(f"interrupted by {exc}; nothing saved", file=file) from None
        if edited == plain:
            fail(FILE_NOT_MODIFIED, f"{file}: no changes (file has not changed, exiting)")
        result = reencrypt_plain(
            original, edited, unwrapper=ring, file=file, fmt=fmt, stores=stores
        )
    if result is None:
        fail(FILE_NOT_MODIFIED, f"{file}: no changes (file has not changed, exiting)")
    atomic_write(Path(file), result)
