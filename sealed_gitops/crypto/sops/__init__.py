"""SOPS documents, byte-compatible with the sops 3.x binary, decrypted and encrypted in process.

The public API (everything the CLI, the pipeline and the key providers call):

* :func:`decrypt_bytes`, :func:`encrypt_bytes`, :func:`extract`, :func:`set_value`,
  :func:`unset_value`, :func:`update_keys`, :func:`rotate`, :func:`reencrypt_plain` (for
  ``edit``), :func:`is_sops_document`, :func:`master_key_ids`, :func:`parse_path` — bytes in,
  bytes out, ``file=`` names the file in every error;
* :func:`decrypt_file` — plaintext bytes of a SOPS file in its own format, as ``sops -d`` prints
  them (the binary store gives the raw bytes); :func:`sops_format` — the store sops picks for a
  file name or ``--input-type`` (``yaml``, ``json``, ``dotenv``, ``ini``, ``binary``);
  :func:`stored_format` — the same for an existing encrypted file, lenient for manifests (a
  binary-store envelope under any unknown name, else YAML);
* :func:`decrypt_document` — the hot path: returns :class:`Decrypted` (plain tree, metadata,
  data key, and the stash that keeps ciphertext stable on re-encryption);
* :func:`load_creation_rules` / :func:`match_creation_rule` — the pure ``.sops.yaml`` parser;
* :class:`MasterKey` / :class:`Unwrapper` / :class:`KeyStanza` — the seam to key providers.
"""

from __future__ import annotations

from .config import (
    CreationRule,
    KeyGroupSpec,
    load_creation_rules,
    load_store_settings,
    match_creation_rule,
)
from .document import (
    DEFAULT_STORES,
    FORMATS,
    MAX_INPUT_BYTES,
    Decrypted,
    StoreSettings,
    decrypt_document,
    sops_format,
    stored_format,
)
from .masterkey import STANZA_KINDS, KeyStanza, MasterKey, Unwrapper
from .metadata import Metadata
from .ops import (
    KUBERNETES_ENCRYPTED_REGEX,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    extract,
    is_sops_document,
    master_key_ids,
    parse_path,
    reencrypt_plain,
    rotate,
    set_value,
    unset_value,
    update_keys,
)
from .tree import Rules, TreeBranch
from .values import Comment

__all__ = [
    "DEFAULT_STORES",
    "FORMATS",
    "KUBERNETES_ENCRYPTED_REGEX",
    "MAX_INPUT_BYTES",
    "STANZA_KINDS",
    "Comment",
    "CreationRule",
    "Decrypted",
    "KeyGroupSpec",
    "KeyStanza",
    "MasterKey",
    "Metadata",
    "Rules",
    "StoreSettings",
    "TreeBranch",
    "Unwrapper",
    "decrypt_bytes",
    "decrypt_document",
    "decrypt_file",
    "encrypt_bytes",
    "extract",
    "is_sops_document",
    "load_creation_rules",
    "load_store_settings",
    "master_key_ids",
    "match_creation_rule",
    "parse_path",
    "reencrypt_plain",
    "rotate",
    "set_value",
    "sops_format",
    "stored_format",
    "unset_value",
    "update_keys",
]
