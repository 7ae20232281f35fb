"""Reading and writing dotenv SOPS documents the way sops 3.11 does (``stores/dotenv``).

Why: Flux's secretGenerator ``envs:`` and many repositories keep ``.env`` files encrypted by sops,
and a file must decrypt to the same bytes, and be written in the same bytes, as sops would. The
format is sops' own, not a shell's: one ``KEY=value`` per line split at the first ``=``, no
quoting, ``#`` at the start of a line is a comment, empty lines vanish, ``\\n`` in a value is a
newline. The metadata is flattened into the same lines with a ``sops_`` prefix, sorted, at the end
(:mod:`.flat_metadata`); here it is gathered into a nested ``sops`` branch so the rest of the
engine handles every format alike.
"""

from __future__ import annotations

import math
from typing import Any

from sealed_gitops.errors import FormatError

from .flat_metadata import flatten_metadata, unflatten_metadata
from .tree import TreeBranch
from .values import Comment, Timestamp, format_float_g

__all__ = ["SOPS_PREFIX", "dump_dotenv", "dump_dotenv_value", "load_dotenv", "value_text"]

SOPS_PREFIX = "sops_"


def load_dotenv(text: str) -> list[TreeBranch]:
    """One branch; ``sops_*`` keys (if any) gathered into a ``sops`` branch at its end."""
    branch = TreeBranch()
    meta: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith("#"):
            branch.append((Comment(line[1:]), None))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            # the line itself may be a secret: name its number only
            raise FormatError("invalid dotenv input line (no '=')", location=f"line {number}")
        if key.startswith(SOPS_PREFIX):
            meta.append((key[len(SOPS_PREFIX) :], value))
            continue
        branch.append((key, value.replace("\\n", "\n")))
    if meta:
        branch.append(("sops", unflatten_metadata(meta)))
    return [branch]


def value_text(value: Any) -> str:
    """sops' ``ValToString``: how a typed leaf is written in a dotenv or INI file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        text = format_float_g(value).replace("e", "E")
        # Go adds a decimal when the text could be read as an integer
        return text if "." in text or "E" in text else f"{value:.1f}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if value is None:
        return "<nil>"
    return str(value)


def dump_dotenv(branches: list[TreeBranch]) -> bytes:
    """The lines of the first branch; a ``sops`` branch is flattened and written last."""
    out: list[str] = []
    meta: TreeBranch | None = None
    for key, value in branches[0] if branches else TreeBranch():
        if isinstance(key, Comment):
            out.append(f"#{key.value}\n")
            continue
        if key == "sops" and isinstance(value, TreeBranch):
            meta = value
            continue
        if isinstance(value, TreeBranch | list):
            raise FormatError(f"cannot use complex value in dotenv file; offending key {key}")
        if isinstance(value, Comment):
            raise FormatError(f"cannot use a comment as the value of {key}")
        text = value.replace("\n", "\\n") if isinstance(value, str) else value_text(value)
        out.append(f"{key}={text}\n")
    if meta is not None:
        out.extend(f"{SOPS_PREFIX}{k}={v}\n" for k, v in flatten_metadata(meta))
    return "".join(out).encode("utf-8", "surrogateescape")


def dump_dotenv_value(value: Any) -> bytes:
    """``--extract`` on a dotenv file: sops' store can only emit a string."""
    if isinstance(value, str) and not isinstance(value, Timestamp):
        return value.encode("utf-8", "surrogateescape")
    kind = type(value).__name__
    raise FormatError(f"the dotenv store only supports emitting strings, got {kind}")
