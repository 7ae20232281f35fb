"""INI SOPS documents (sops 3.11 ``stores/ini``, go-ini): placeholder until the store lands.

Why: the dispatch in :mod:`.document` names every sops format; this one refuses clearly instead of
reading an INI file as YAML.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.errors import InputError

from .tree import TreeBranch

__all__ = ["dump_ini", "dump_ini_value", "load_ini"]

_UNSUPPORTED = "the INI store is not supported yet"


def load_ini(text: str) -> list[TreeBranch]:
    raise InputError(_UNSUPPORTED)


def dump_ini(branches: list[TreeBranch]) -> bytes:
    raise InputError(_UNSUPPORTED)


def dump_ini_value(value: Any) -> bytes:
    raise InputError(_UNSUPPORTED)
