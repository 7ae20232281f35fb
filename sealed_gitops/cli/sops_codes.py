"""sops' exit statuses for the sops commands (encrypt, decrypt, set, unset, edit).

Why: scripts written around sops test its exit status (``100`` the file does not exist, ``128`` no
key could open the data key, ``203`` already encrypted, ``200`` an edit changed nothing, ...), so
these commands exit as sops 3.11 does (``cmd/sops/codes/codes.go``) instead of our generic 1. The
message is the same one line as everywhere else (``error: ...``), redacted like every error.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from sealed_gitops.errors import (
    AlreadyEncrypted,
    EmptyDocument,
    FormatError,
    IntegrityError,
    KeyProviderError,
    MacMismatch,
    NoMatchingKey,
    SealedGitopsError,
)
from sealed_gitops.redact import redact

__all__ = [
    "CANNOT_READ_INPUT",
    "CONFLICTING_PARAMETERS",
    "DECRYPTING_TREE",
    "FILE_ALREADY_ENCRYPTED",
    "FILE_NOT_MODIFIED",
    "GENERIC",
    "INVALID_SET_FORMAT",
    "INVALID_TREE_PATH",
    "MAC_MISMATCH",
    "NEED_ONE_DOCUMENT",
    "NO_EDITOR",
    "NO_FILE",
    "NO_KEY",
    "coded",
    "fail",
    "require_file",
    "sops_codes",
    "with_sops_codes",
]

F = TypeVar("F", bound=Callable[..., Any])

# The values of sops 3.11's cmd/sops/codes (facts, not code: the numbers scripts test).
GENERIC = 1
CANNOT_READ_INPUT = 2
INVALID_SET_FORMAT = 7
CONFLICTING_PARAMETERS = 8
DECRYPTING_TREE = 25
MAC_MISMATCH = 51
INVALID_TREE_PATH = 91
NEED_ONE_DOCUMENT = 92
NO_FILE = 100
NO_KEY = 128
FILE_NOT_MODIFIED = 200
NO_EDITOR = 201
FILE_ALREADY_ENCRYPTED = 203


def fail(code: int, message: str | SealedGitopsError) -> NoReturn:
    """Print the one error line and exit with ``code``."""
    click.echo(f"error: {redact(str(message))}", err=True)
    raise click.exceptions.Exit(code)


def require_file(file: str) -> None:
    """sops refuses a FILE that does not exist before anything else, with 100."""
    if file != "-" and not Path(file).exists():
        fail(NO_FILE, f"{file}: No such file or directory (sops cannot operate on it either)")


@contextlib.contextmanager
def coded(code: int) -> Iterator[None]:
    """Any project error raised inside exits with ``code`` (a bad path 91, a bad value 7, ...)."""
    try:
        yield
    except SealedGitopsError as exc:
        fail(code, exc)


@contextlib.contextmanager
def sops_codes(*, parse_code: int = GENERIC) -> Iterator[None]:
    """Map the engine's errors to sops' statuses; ``parse_code`` is for input that does not parse
    (``encrypt`` exits 2 there, ``decrypt`` 1, like sops)."""
    try:
        yield
    except AlreadyEncrypted as exc:
        fail(FILE_ALREADY_ENCRYPTED, exc)
    except EmptyDocument as exc:
        fail(NEED_ONE_DOCUMENT, exc)
    except MacMismatch as exc:
        fail(MAC_MISMATCH, exc)
    except (NoMatchingKey, KeyProviderError) as exc:
        fail(NO_KEY, exc)
    except IntegrityError as exc:
        fail(DECRYPTING_TREE, exc)
    except FormatError as exc:
        fail(parse_code, exc)


def with_sops_codes(*, parse_code: int = GENERIC) -> Callable[[F], F]:
    """Decorate a sops command (its FILE argument is ``file``): 100 for a missing FILE, then
    :func:`sops_codes` around the command."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_file(str(kwargs.get("file", "-")))
            with sops_codes(parse_code=parse_code):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
