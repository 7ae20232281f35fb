"""The leftover guard: no object leaves the decryption stage still holding SOPS ciphertext.

Why this module exists: kustomize copies file contents into objects it makes. A
``configMapGenerator`` over a SOPS-encrypted file, a dotenv file sops encrypted, or a Secret
whose ``data`` is such a file base64-encoded, gives an object whose values are ``ENC[...]``
strings and ``sops_mac`` keys. Nothing about it looks encrypted to the classifier (it has no
top-level ``sops`` block), so before this guard it went through and would have been applied:
the wrong object, silently (issue 12). Whatever way such an object is made, it is a failure of
that object, naming the file.

What counts as left over, anywhere in the object (data, stringData, annotations, nested):

* a top-level ``sops`` key, or a mapping key that is SOPS metadata in the flat form sops writes
  into dotenv and INI files (``sops_mac``, ``sops_version``, ``sops_age__list_0__map_enc``...);
* a string holding ``ENC[AES256_GCM,`` (every SOPS file holds one: its MAC is one);
* in a Secret's ``data`` or a ConfigMap's ``binaryData``, base64 whose bytes hold it.

Cost: the operator builds thousands of objects per reconcile, so the common case is one C-speed
pass: the object serialised once with :func:`json.dumps` and searched for the two markers; only an
object that holds one of them (or cannot be serialised) is walked to say where. Base64 values are
decoded only in Secret ``data`` and ConfigMap ``binaryData``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sealed_gitops.errors import RenderError

__all__ = ["refuse_leftover_ciphertext"]

ENC_MARK = "ENC[AES256_GCM,"
_ENC_BYTES = ENC_MARK.encode()

#: the metadata keys of sops' flat (dotenv / INI) form; list items are ``<kind>__list_<n>__...``
_FLAT_KEYS = frozenset(
    {
        "sops_mac",
        "sops_lastmodified",
        "sops_version",
        "sops_mac_only_encrypted",
        "sops_shamir_threshold",
        "sops_unencrypted_suffix",
        "sops_encrypted_suffix",
        "sops_unencrypted_regex",
        "sops_encrypted_regex",
        "sops_unencrypted_comment_regex",
        "sops_encrypted_comment_regex",
    }
)


def _is_flat_metadata(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    return key in _FLAT_KEYS or (key.startswith("sops_") and "__list_" in key)


def _found(value: Any, path: str) -> Iterator[str]:
    """Where leftover SOPS material sits, as ``a.b[0]`` paths (never the value itself)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if (not path and key == "sops" and isinstance(item, Mapping)) or _is_flat_metadata(key):
                yield f"{where} (SOPS metadata)"
                continue
            yield from _found(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _found(item, f"{path}[{index}]")
    elif isinstance(value, str) and ENC_MARK in value:
        yield f"{path} (an ENC[...] value)"


def _base64_sections(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    kind = obj.get("kind")
    for section in ("data", "binaryData") if kind == "Secret" else ("binaryData",):
        values = obj.get(section)
        if isinstance(values, Mapping):
            yield section, values


def _found_in_base64(obj: Mapping[str, Any]) -> Iterator[str]:
    for section, values in _base64_sections(obj):
        for key, value in values.items():
            if not isinstance(value, str):
                continue
            try:
                raw = base64.b64decode(value, validate=False)
            except (binascii.Error, ValueError):
                continue  # not base64: the API server refuses it, not our concern here
            if _ENC_BYTES in raw:
                yield f"{section}.{key} (an ENC[...] value, base64-encoded)"


def _may_hold_leftovers(obj: Mapping[str, Any]) -> bool:
    try:
        text = json.dumps(obj, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return True  # keys json cannot write: walk it
    return ENC_MARK in text or "sops" in text


def refuse_leftover_ciphertext(obj: Mapping[str, Any], *, what: str = "the object") -> None:
    """Raise :class:`RenderError` if ``obj`` still holds SOPS ciphertext or metadata.

    Called on every object the decryption stage produces, after decryption; ``what`` names the
    object (``ConfigMap ns/name``), the caller adds the file and document. The message says
    where (``data.app.yaml``), never a value.
    """
    places = list(_found(obj, "")) if _may_hold_leftovers(obj) else []
    places.extend(_found_in_base64(obj))
    if places:
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        raise RenderError(
            f"{what} still holds SOPS ciphertext after decryption at {shown}: it would be applied "
            "encrypted (a configMapGenerator or a manifest made from a SOPS-encrypted file?)"
        )
