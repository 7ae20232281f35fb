"""What ``verify`` checks in a SOPS file's metadata and values, for every store sops writes.

Why a module of its own: ``verify`` first checked only Kubernetes Secrets in YAML and JSON, so a
dotenv, INI or plain JSON file in plaintext passed even where ``.sops.yaml`` says it must be
encrypted (issue 12: ``app.env`` with ``NEW_TOKEN=...`` in the clear, encrypted under a weaker rule
or never at all). Here are the checks every store shares (the metadata's shape, the values left in
plaintext) and the walk over data files, which are not manifests: dotenv, INI, and JSON that is
not a Kubernetes object.

Which rules say a value must be encrypted: the ``.sops.yaml`` creation rule that matches the file
now (found as the other commands find it), and the rules recorded in the file's own metadata when
it was encrypted. A plaintext value either asks to encrypt is a failure: the file's own rules
catch a pasted line, the repository's rule catches a file encrypted under a rule that was weaker.
A file no rule matches is not judged. Messages name the file, the key path and the rule; never a
value.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sealed_gitops.crypto.sops import Rules, TreeBranch, decrypt_document
from sealed_gitops.crypto.sops.document import load_tree
from sealed_gitops.crypto.sops.flat_metadata import unflatten_metadata
from sealed_gitops.crypto.sops.masterkey import STANZA_KINDS
from sealed_gitops.crypto.sops.values import Comment
from sealed_gitops.errors import (
    FormatError,
    InputError,
    KeyProviderError,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
)
from sealed_gitops.keys.keyring import KeyRing

from .options import matching_rule

__all__ = [
    "RuleInForce",
    "check_data_file",
    "check_metadata",
    "leaves",
    "metadata_rules",
    "rule_in_force",
]

_B64 = r"[A-Za-z0-9+/]*={0,2}"
_MAC_RE = re.compile(rf"^ENC\[AES256_GCM,data:({_B64}),iv:({_B64}),tag:({_B64}),type:str\]$")
ENC_PREFIX = "ENC[AES256_GCM,"
#: the MAC is an upper-case hex SHA-512: 128 bytes of ciphertext; the IV and tag sizes are sops'
_MAC_SIZES = (128, 32, 16)
_DEFAULT_SUFFIX = "_unencrypted"


@dataclass(frozen=True)
class RuleInForce:
    """The ``.sops.yaml`` creation rule that matches a file, and how to name it."""

    rules: Rules
    describe: str


def rule_in_force(path: Path) -> RuleInForce | None:
    """The creation rule sops would use for ``path`` (first match wins), or None."""
    rule, config = matching_rule(str(path), None)
    if rule is None or config is None:
        return None
    rules = rule.rules
    if not rule.has_rule:  # sops' default: every value but keys ending in _unencrypted
        rules = dataclasses.replace(rules, unencrypted_suffix=_DEFAULT_SUFFIX)
    return RuleInForce(rules, f"the rule path_regex {rule.path_regex!r} of {config}")


def _mac_format_ok(mac: str) -> bool:
    match = _MAC_RE.match(mac)
    if match is None:
        return False
    try:
        sizes = tuple(len(base64.b64decode(g, validate=True)) for g in match.groups())
    except (binascii.Error, ValueError):
        return False
    return sizes == _MAC_SIZES


def _timestamp_ok(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _stanza_count(meta: Mapping[str, Any]) -> int:
    containers = [meta, *[g for g in meta.get("key_groups") or [] if isinstance(g, Mapping)]]
    return sum(
        sum(1 for s in c.get(kind) or [] if isinstance(s, Mapping) and s.get("enc"))
        for c in containers
        for kind in STANZA_KINDS
    )


def check_metadata(meta: Any, *, file: str, where: str | None) -> Mapping[str, Any]:
    """The metadata's shape: a well-formed MAC, a lastmodified time, at least one master key."""
    if not isinstance(meta, Mapping):
        raise FormatError("the sops metadata is not a mapping", file=file, location=where)
    mac = meta.get("mac")
    if not mac:
        raise MacMismatch("SOPS file without a MAC", file=file, location=where)
    if not isinstance(mac, str) or not _mac_format_ok(mac):
        raise MacMismatch(
            "the MAC is not a well-formed ENC[AES256_GCM,...] value", file=file, location=where
        )
    stamp = meta.get("lastmodified")
    if not isinstance(stamp, str) or not _timestamp_ok(stamp):
        raise FormatError(
            "lastmodified is missing or not an RFC 3339 time", file=file, location=where
        )
    if _stanza_count(meta) == 0:
        raise FormatError("no master key holds the data key", file=file, location=where)
    return meta


def metadata_rules(meta: Mapping[str, Any]) -> Rules:
    """The encryption rules the file was encrypted with, as its metadata records them."""
    names = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
    given = {n: str(meta.get(n) or "") for n in names}
    if not any(given.values()):
        given["unencrypted_suffix"] = _DEFAULT_SUFFIX
    return Rules(
        unencrypted_suffix=given["unencrypted_suffix"],
        encrypted_suffix=given["encrypted_suffix"],
        unencrypted_regex=given["unencrypted_regex"],
        encrypted_regex=given["encrypted_regex"],
    )


def leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        for child in value:
            yield from leaves(child, path)
    else:
        yield path, value


def plaintext(value: Any) -> bool:
    """A value sops would have encrypted that is not ciphertext (None and "" hold nothing)."""
    return value not in (None, "") and not (isinstance(value, str) and value.startswith(ENC_PREFIX))


def _plain(value: Any) -> Any:
    if isinstance(value, TreeBranch):
        return {k: _plain(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, Comment)]
    return value


def _ini_light(text: str, *, file: str) -> dict[str, Any]:
    """Sections and keys of an INI file, the ``[sops]`` section unflattened as sops writes it.

    Only until the INI store lands in :mod:`sealed_gitops.crypto.sops` (it refuses INI for now):
    verify needs the keys, whether each value is ciphertext, and the metadata, not the values.
    """
    sections: dict[str, dict[str, str]] = {}
    current = "DEFAULT"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            sections.setdefault(current, {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise FormatError("invalid INI line (no '=')", file=file, location=f"line {number}")
        sections.setdefault(current, {})[key.strip()] = value.strip()
    tree: dict[str, Any] = {k: v for k, v in sections.items() if k != "sops"}
    if "sops" in sections:
        tree["sops"] = _plain(unflatten_metadata(list(sections["sops"].items())))
    return tree


def _load(data: bytes, *, fmt: str, file: str) -> dict[str, Any]:
    if fmt == "ini":
        try:
            branches = load_tree(data, fmt=fmt, file=file)
        except InputError as exc:
            if "not supported" not in exc.reason:
                raise
            return _ini_light(data.decode("utf-8", errors="replace"), file=file)
    else:
        branches = load_tree(data, fmt=fmt, file=file)
    tree = _plain(branches[0]) if branches else {}
    if not isinstance(tree, dict):
        raise FormatError(f"a {fmt} file must hold a mapping", file=file)
    return tree


def check_data_file(
    path: Path, *, fmt: str, keyring: KeyRing | None, tree: dict[str, Any] | None = None
) -> str:
    """Check a dotenv, INI or non-manifest JSON file; return what was checked (see verify)."""
    file = str(path)
    data = path.read_bytes()
    values = dict(tree) if tree is not None else _load(data, fmt=fmt, file=file)
    meta = values.pop("sops", None)
    rule = rule_in_force(path)
    if meta is None:
        if rule is not None:
            for key, value in leaves(values, ()):
                if plaintext(value) and rule.rules.should_encrypt(key, [], False):
                    raise NotEncryptedError(
                        f"holds plaintext ({'.'.join(key)}) where {rule.describe} says it must "
                        f"be encrypted: run sops -e -i {file}",
                        file=file,
                    )
        return "plain"
    own = metadata_rules(check_metadata(meta, file=file, where=None))
    for key, value in leaves(values, ()):
        if not plaintext(value):
            continue
        if own.should_encrypt(key, [], False):
            raise NotEncryptedError(f"{'.'.join(key)} is not encrypted", file=file)
        if rule is not None and rule.rules.should_encrypt(key, [], False):
            raise NotEncryptedError(
                f"{'.'.join(key)} is not encrypted, and {rule.describe} says it must be "
                f"(encrypt the file again: sops -d, then sops -e -i {file})",
                file=file,
            )
    if keyring is None or len(keyring) == 0:
        return "structure"
    try:
        decrypt_document(data, unwrapper=keyring, file=file, fmt=fmt)
    except (NoMatchingKey, KeyProviderError):
        return "structure"
    except InputError as exc:
        if "not supported" in exc.reason:  # INI until its store lands: structure only
            return "structure"
        raise
    return "mac"
