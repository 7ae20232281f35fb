"""The flags naming the private keys that ``build``, ``diff`` and ``audit --decrypt`` decrypt with.

Why a module of its own: the three commands take the same keys (age identities, sealed-secrets
private keys, a GnuPG home) and must not drift apart on their names, types or meaning. It imports
click only: ``audit`` shares a module with the git drivers that git runs once per file, and they
must not pay for importing the key providers (those are imported where the keys are loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["decryption_key_options"]

F = TypeVar("F", bound=Callable[..., Any])


def decryption_key_options(*, when: str = "") -> Callable[[F], F]:
    """``--age-identity``, ``--sealing-key`` and ``--gnupghome``.

    The command gets ``age_identities`` and ``sealing_keys`` (tuples of paths) and ``gnupghome``.
    ``when`` names the flag under which the keys are used at all (``"--decrypt"``), so each help
    text says so.
    """
    prefix = f"With {when}: " if when else ""
    options = [
        click.option(
            "--age-identity",
            "age_identities",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"{prefix}age identity file (repeatable); SOPS_AGE_KEY* and the default keys "
            "file are read too.",
        ),
        click.option(
            "--sealing-key",
            "sealing_keys",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"{prefix}sealed-secrets private key: PEM or a kubernetes.io/tls Secret "
            "manifest (repeatable).",
        ),
        click.option(
            "--gnupghome",
            type=click.Path(file_okay=False, path_type=Path),
            help=f"{prefix}GnuPG home holding PGP keys (default: $GNUPGHOME, else ~/.gnupg).",
        ),
    ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate
