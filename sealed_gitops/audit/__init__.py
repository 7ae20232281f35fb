"""Git history turned into per-key change records, without any plaintext.

Public API (what the CLI and, later, the operator call):

* :func:`audit_history` (``audit.trail``): a path in a Git work tree -> :class:`AuditResult` with
  :class:`ChangeRecord` rows (``records``), oldest first;
* :class:`ChangeRecord`, :class:`Change`, :class:`SignatureStatus`, :data:`ROW_FIELDS`
  (``audit.records``): the record type;
* :class:`KeyedHasher` (``audit.plaintext``): ``--decrypt``, keyed hashes with a per-run key;
* :func:`masked_text` (``audit.textconv``) and :func:`merge_sops` (``audit.merge``): git's
  textconv and merge drivers;
* :func:`install_audit_stream` and :data:`AUDIT_LOGGER` (``audit.log``): the operator's audit
  lines as JSON on stdout, apart from its diagnostics.
"""

from __future__ import annotations

from sealed_gitops.audit.log import AUDIT_LOGGER, install_audit_stream
from sealed_gitops.audit.merge import merge_sops
from sealed_gitops.audit.plaintext import KeyedHasher
from sealed_gitops.audit.records import (
    ROW_FIELDS,
    Change,
    ChangeRecord,
    SignatureStatus,
    object_label,
)
from sealed_gitops.audit.textconv import masked_text
from sealed_gitops.audit.trail import AuditResult, audit_history, parse_date

__all__ = [
    "AUDIT_LOGGER",
    "ROW_FIELDS",
    "AuditResult",
    "Change",
    "ChangeRecord",
    "KeyedHasher",
    "SignatureStatus",
    "audit_history",
    "install_audit_stream",
    "masked_text",
    "merge_sops",
    "object_label",
    "parse_date",
]
