"""Opening one SOPS-encrypted file that kustomize reads as a file: by format, MAC verified.

Why this module exists: a generator source or a patch is not a manifest; it is read whole by
kustomize (``files:``, ``envs:``, ``patches:``), in whatever format sops wrote it: YAML, JSON,
dotenv, INI or binary. Flux's kustomize-controller picks the format from the file name (for a
``files:`` entry, from the *key* name: ``key=file.txt`` is binary) and decrypts a file only when
the format's marker (``mac: ENC[`` for YAML, ``sops_mac=ENC[`` for dotenv, ...) is in it; the
plaintext is then emitted in the same format. The same rules apply here, with one difference:
the MAC is always verified (Flux turns the check off).

The same opening serves a Secret whose ``data`` value is itself a SOPS document (Flux decrypts
those after the build): the input format is told by the marker, the output format by the key's
name.

Every plaintext value is registered with :mod:`sealed_gitops.redact` before the bytes are
returned, so an error that quotes them (kustomize quoting a patch it cannot apply) is masked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from sealed_gitops.crypto.sops import Comment, TreeBranch, Unwrapper, decrypt_document
from sealed_gitops.crypto.sops.document import dump_tree, load_tree, sops_format
from sealed_gitops.crypto.sops.registration import register_encrypted
from sealed_gitops.errors import NoMatchingKey, ScopeMismatch
from sealed_gitops.redact import register
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.document import DocKind, Document, mark_decrypted

__all__ = [
    "MARKERS",
    "decrypt_source",
    "format_for_path",
    "has_marker",
    "marker_format",
    "open_secret_data",
    "open_secret_document",
    "refuse_unbound",
    "tree_to_python",
]

#: the bytes that say "this is a SOPS file of this format" (Flux's sopsFormatToMarkerBytes);
#: a binary-store file is a JSON envelope, so it has the JSON marker
MARKERS: dict[str, bytes] = {
    "yaml": b"mac: ENC[",
    "json": b'"mac": "ENC[',
    "binary": b'"mac": "ENC[',
    "dotenv": b"sops_mac=ENC[",
    "ini": b"[sops]",
}


def format_for_path(name: str) -> str:
    """The sops store a file name selects (any other suffix, or none, is binary).

    ``.dockerconfigjson``, the data key of a ``kubernetes.io/dockerconfigjson`` Secret, holds
    JSON: Flux reads it as JSON, and as binary its decrypted tree would have no ``data`` to print.
    Otherwise sops's own rule (:func:`sops_format`), on the name in lower case; a name without a
    suffix is binary (sops_format would call an empty name standard input, YAML).
    """
    if name.endswith(".dockerconfigjson"):
        return "json"
    lowered = name.lower()
    return sops_format(lowered) if "." in lowered else "binary"


def has_marker(data: bytes, fmt: str) -> bool:
    return MARKERS[fmt] in data


def marker_format(data: bytes) -> str | None:
    """The format whose marker ``data`` holds (JSON before binary: the same envelope)."""
    for fmt in ("yaml", "json", "dotenv", "ini"):
        if MARKERS[fmt] in data:
            return fmt
    return None


def tree_to_python(value: Any) -> Any:
    """An engine tree (ordered pairs, comments) as plain dicts and lists, comments dropped."""
    if isinstance(value, TreeBranch):
        return {k: tree_to_python(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [tree_to_python(v) for v in value if not isinstance(v, Comment)]
    return value


def _open(data: bytes, *, fmt: str, unwrapper: Unwrapper, file: str) -> list[TreeBranch]:
    """Decrypt and MAC-verify; register every plaintext leaf that was encrypted."""
    document = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=fmt)
    raw = load_tree(data, fmt=fmt, file=file, encrypted=True)
    for raw_branch, plain_branch in zip(raw, document.branches, strict=False):
        register_encrypted(tree_to_python(raw_branch), tree_to_python(plain_branch))
    return document.branches


def decrypt_source(
    data: bytes,
    *,
    fmt: str,
    unwrapper: Unwrapper | None,
    file: str,
    output: str | None = None,
) -> bytes:
    """The plaintext of the SOPS file ``data`` stored as ``fmt``, written as ``output`` (default
    ``fmt``), MAC verified; the whole plaintext is registered for redaction as well."""
    if unwrapper is None:
        raise NoMatchingKey("no SOPS keys were given to decrypt this file", file=file)
    plain = dump_tree(_open(data, fmt=fmt, unwrapper=unwrapper, file=file), fmt=output or fmt)
    register(plain)
    return plain


def _holds_sops(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return marker_format(base64.b64decode(value, validate=True)) is not None
    except (binascii.Error, ValueError):
        return False


def open_secret_data(
    data: Mapping[str, Any], *, unwrapper: Unwrapper | None, file: str
) -> tuple[dict[str, Any], int, int] | None:
    """A Secret's ``data`` with each value that is a SOPS document decrypted (Flux's rule: input
    format from the marker, output format from the key's name); None when no value is one.

    Returns (the new data, how many values were decrypted, how many were left as they were).
    """
    out: dict[str, Any] = {}
    opened = kept = 0
    for key, value in data.items():
        raw: bytes | None = None
        if isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = None
        fmt = marker_format(raw) if raw is not None else None
        if raw is None or fmt is None:
            out[key] = value
            kept += 1
            continue
        where = f"{file} (Secret data {key!r})"
        plain = decrypt_source(
            raw, fmt=fmt, unwrapper=unwrapper, file=where, output=format_for_path(str(key))
        )
        out[key] = base64.b64encode(plain).decode("ascii")
        opened += 1
    return (out, opened, kept) if opened else None


def open_secret_document(
    doc: Document,
    *,
    unwrapper: Unwrapper | None,
    binding: NamespaceBinding = NamespaceBinding.NONE,
) -> Document:
    """``doc`` with the SOPS documents in its Secret ``data`` decrypted (Flux's "inside" layout).

    Marked decrypted when every value was one and it has no ``stringData`` (nothing of it is
    plain in Git); otherwise it stays a plain Secret (refused unless plain Secrets are allowed),
    with the values that were SOPS documents decrypted all the same. Unchanged when no value is
    a SOPS document.
    """
    values = doc.data.get("data")
    if doc.kind is not DocKind.PLAIN_SECRET or not isinstance(values, Mapping):
        return doc
    if not any(_holds_sops(v) for v in values.values()):
        return doc
    refuse_unbound(binding, file=doc.file)
    opened = open_secret_data(values, unwrapper=unwrapper, file=doc.file)
    if opened is None:
        return doc
    new_values, _, kept = opened
    data = {**doc.data, "data": new_values}
    result = Document(doc.file, doc.index, data, doc.kind, doc.id, doc.via)
    return mark_decrypted(result) if kept == 0 and data.get("stringData") is None else result


def refuse_unbound(binding: NamespaceBinding, *, file: str) -> None:
    """Refuse to decrypt ``file`` for kustomize (a generator source, a patch, a Secret data
    value) under a Strict namespace binding: such a file cannot name, under its MAC, the
    namespace its values belong in, so the binding could not stop a committer from copying
    another namespace's encrypted file into a generator or patch here."""
    if binding is NamespaceBinding.STRICT:
        raise ScopeMismatch(
            "the KeyRing's spec.sops.namespaceBinding is Strict and this SOPS file would be "
            "decrypted into a generated Secret, a patch or a Secret data value, which cannot "
            "bind its values to a namespace: commit a SOPS-encrypted manifest that names its "
            "namespace instead",
            file=file,
        )
