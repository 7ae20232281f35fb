"""The operator's audit stream: one JSON object per line on stdout, apart from the diagnostics.

Why a stream of its own: issue 8 asks for a structured audit line (JSON on stdout) per changed
Secret, with the commit, its author, the object and the changed keys. The operator's diagnostics
go to stderr, wrapped by its log formatter (the audit fields would end up as an escaped string
inside ``message``, or after a timestamp in text mode) and filtered by ``--log-level``. A log
pipeline should instead find the audit fields at the top level of a line of their own, always,
whatever the diagnostics' level or format. So the ``sealed_gitops.audit`` logger gets its own
stdout handler here, does not propagate to the root, and is never quieter than INFO.

The producer (``operator.sync``) logs the audit fields as a JSON object in the message; this
formatter lifts them to the top level next to ``time``, ``level``, ``logger`` and ``message``
(the same envelope as the operator's ``--log-format json`` lines, so one parser reads both).
Lines pass through :class:`~sealed_gitops.redact.RedactingFilter` like every other log line. The
fields that say who changed what (commit, revision, author, object and key names) come from Git
and the API, not from values: a producer hands them over as the record's ``audit_identity`` and
they are put into the line *after* redaction, so no committed value can blank them (invariant 8;
issue 11, finding 10). Everything else in the line is redacted.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from sealed_gitops.redact import RedactingFilter, redact_everywhere

__all__ = ["AUDIT_LOGGER", "IDENTITY_ATTRIBUTE", "AuditLineFormatter", "install_audit_stream"]

#: The logger the operator writes audit lines to.
AUDIT_LOGGER = "sealed_gitops.audit"

#: Envelope fields; a producer's field of the same name does not overwrite them.
_ENVELOPE = ("time", "level", "logger")

#: The record attribute (``extra={"audit_identity": {...}}``) holding the identity fields.
IDENTITY_ATTRIBUTE = "audit_identity"


class AuditLineFormatter(logging.Formatter):
    """A record whose message is a JSON object -> one JSON line with those fields at top level."""

    def format(self, record: logging.LogRecord) -> str:
        text = redact_everywhere(record.getMessage())
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            fields = {"message": text}
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": str(fields.get("event") or "audit"),
        }
        line.update((k, v) for k, v in fields.items() if k not in _ENVELOPE)
        identity = getattr(record, IDENTITY_ATTRIBUTE, None)
        if isinstance(identity, dict):
            # JSON encoding escapes any control character, so a name cannot forge a line.
            line.update((str(k), v) for k, v in identity.items() if k not in _ENVELOPE)
        return json.dumps(line, ensure_ascii=False)


def install_audit_stream(stream: TextIO | None = None) -> logging.Handler:
    """Send the audit logger's lines, as JSON, to ``stream`` (default: ``sys.stdout``) only.

    Call it once where the process configures logging (``sealed-gitops operator``); calling it
    again replaces the handler. Returns the handler (tests use it to detach).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(AuditLineFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    # Not to the root as well: the diagnostics stream on stderr would repeat every line.
    logger.propagate = False
    return handler
