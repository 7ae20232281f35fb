"""The binary store of sops 3.11: any file, encrypted whole as one ``data`` value.

Why: sops encrypts every file whose extension it does not know (a certificate, a kubeconfig, a
``.txt``) as the single string ``data`` of a JSON document, and decrypting such a file must give
back the raw bytes, not a wrapper (Flux's secretGenerator ``files:`` reads them so). The plain side
is the file's bytes, kept byte for byte (invalid UTF-8 included, through ``surrogateescape``,
which is how Go's ``string([]byte)`` carries them); the encrypted side is a JSON SOPS document.
"""

from __future__ import annotations

import json

from sealed_gitops.errors import FormatError

from .json_store import dump_json, load_json
from .tree import TreeBranch

__all__ = ["DATA_KEY", "dump_binary", "load_binary", "looks_encrypted"]

#: The one key of a binary store's tree.
DATA_KEY = "data"


def looks_encrypted(data: bytes) -> bool:
    """True when the bytes are a JSON object with a top-level ``sops`` key (a sops envelope)."""
    stripped = data.lstrip()
    if not stripped.startswith(b"{") or b'"sops"' not in data:
        return False
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and "sops" in value


def load_binary(data: bytes, *, encrypted: bool | None) -> list[TreeBranch]:
    """The envelope's tree when ``encrypted``; else the bytes as ``data`` (None: look first)."""
    if encrypted is None:
        encrypted = looks_encrypted(data)
    if encrypted:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"input is not UTF-8 (byte offset {exc.start})") from exc
        return load_json(text)
    return [TreeBranch([(DATA_KEY, data.decode("utf-8", "surrogateescape"))])]


def dump_binary(branches: list[TreeBranch], *, indent: str = "\t") -> bytes:
    """The envelope (JSON) when the tree carries metadata, else the raw bytes of ``data``."""
    if len(branches) != 1:
        raise FormatError("error emitting binary store: there must be exactly one tree branch")
    branch = branches[0]
    if "sops" in branch.keys_in_order():
        return dump_json(branches, indent=indent)
    value = branch.get(DATA_KEY)
    if DATA_KEY not in branch.keys_in_order():
        raise FormatError("error emitting binary store: no binary data found in tree")
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise FormatError(
            "error emitting binary store: 'data' key in tree does not have a string value"
        )
    return value.encode("utf-8", "surrogateescape")
