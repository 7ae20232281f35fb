"""The operator's log lines, as ``sealed-gitops logs`` reads, filters and shows them.

Why apart from the command: this part is pure (text in, text out), so it is tested without a
cluster, and it is where the rules about someone else's text live. A log line is the operator's,
but what it quotes is not: an object name, a Git error, a message a tenant's repository caused.
So a line is shown printable and bounded (an ESC sequence or a newline inside a message cannot
rewrite the terminal or forge a second line), and ``-o json`` re-encodes each line with every
non-ASCII and control character escaped.

The operator writes one JSON object per line (``operator --log-format json``, the default):
``time``, ``level``, ``logger``, ``message`` and ``object`` (``kind``, ``namespace``, ``name``:
from kopf's per-object loggers, or from :mod:`sealed_gitops.operator.log_context` for the
project's own lines). A line without ``object`` (``--log-format text``, or an operator from before
``object`` was written everywhere) is matched by the ``Kind namespace/name`` its message names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sealed_gitops.redact import Identity, compose

__all__ = ["MAX_MESSAGE", "LogLine", "ObjectRef", "newest", "parse_line"]

#: Characters of one message shown; the rest is replaced by "...".
MAX_MESSAGE = 4096
#: ``--log-format text`` lines start with logging's asctime: ``2026-12-05 09:41:07,123``.
_TEXT_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,(\d{3}))?")


@dataclass(frozen=True)
class ObjectRef:
    """The object whose lines are wanted: ``Sync``, ``Repository`` or ``KeyRing``."""

    kind: str
    namespace: str
    name: str

    def pattern(self) -> re.Pattern[str]:
        """``Kind namespace/name`` as a message names it, not as a prefix of a longer name."""
        ref = f"{re.escape(self.kind)} {re.escape(self.namespace)}/{re.escape(self.name)}"
        return re.compile(rf"(?<![\w.-]){ref}(?![\w.-])")


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\n``), bounded."""
    # Only what can be shown is escaped (one more character, so a longer text still gets the
    # "..."): a whole read may hold one line of megabytes, and this runs for every line.
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[: MAX_MESSAGE + 1]
    )
    return shown if len(shown) <= MAX_MESSAGE else shown[: MAX_MESSAGE - 3] + "..."


@dataclass(frozen=True)
class LogLine:
    """One line of an operator pod's log (``data``: its JSON object, None for a text line)."""

    raw: str
    data: dict[str, Any] | None
    time: dt.datetime | None
    pod: str | None = None

    @property
    def message(self) -> str:
        if self.data is None:
            return self.raw
        return str(self.data.get("message", ""))

    def object(self) -> dict[str, str] | None:
        found = (self.data or {}).get("object")
        if not isinstance(found, dict):
            return None
        return {k: str(found.get(k) or "") for k in ("kind", "namespace", "name")}

    def about(self, ref: ObjectRef) -> bool:
        """Is this line about ``ref``: its ``object``, else the object its message names."""
        found = self.object()
        if found is not None and found["name"]:
            return (
                found["kind"].lower() == ref.kind.lower()
                and found["namespace"] == ref.namespace
                and found["name"] == ref.name
            )
        return bool(ref.pattern().search(self.message))

    def human(self, *, show_pod: bool) -> str:
        """``TIME LEVEL Kind/namespace/name message``: names as identities, message escaped."""
        data = self.data
        if data is None:
            prefix = [Identity(self.pod), " "] if show_pod and self.pod else []
            return compose(*prefix) + _printable(self.raw)
        when = self.time.isoformat(timespec="milliseconds") if self.time else "-"
        found = self.object()
        what = "/".join(v for v in found.values() if v) if found else "-"
        cells = [when, str(data.get("level") or "-"), what]
        if show_pod and self.pod:
            cells.insert(0, self.pod)
        shown = " ".join(compose(Identity(cell)) for cell in cells)
        return f"{shown} {_printable(self.message)}"

    def json(self) -> str:
        """The line as one JSON object (``pod`` added), every non-ASCII character escaped."""
        body: dict[str, Any] = dict(self.data) if self.data is not None else {"message": self.raw}
        if self.pod:
            body["pod"] = self.pod
        return json.dumps(body, ensure_ascii=True)


def parse_line(raw: str, *, pod: str | None = None) -> LogLine:
    """A line as read (JSON object, or text with logging's asctime in front)."""
    raw = raw.rstrip("\r\n")
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return LogLine(raw, data, _time(data.get("time")), pod)
    match = _TEXT_TIME.match(raw)
    when = None
    if match:
        when = _time(f"{match.group(1).replace(' ', 'T')}.{match.group(2) or '000'}")
    return LogLine(raw, None, when, pod)


def newest(
    lines: Iterable[LogLine], *, since: dt.datetime | None, tail: int | None
) -> list[LogLine]:
    """``lines`` (already filtered) in time order, from ``since`` on, the last ``tail`` of them.

    Lines of several pods are merged by time; a line without a readable time (a traceback's
    continuation) keeps the time of the line before it, so it stays where it was, and is never
    dropped by ``since`` on its own.
    """
    ordered: list[tuple[dt.datetime, int, LogLine]] = []
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    last = floor
    for index, line in enumerate(lines):
        if line.time is not None:
            last = line.time
        elif index == 0 or line.pod != ordered[-1][2].pod:
            last = floor
        ordered.append((last, index, line))
    ordered.sort(key=lambda item: (item[0], item[1]))
    kept = [
        line
        for when, _, line in ordered
        if since is None or (line.time is None and when == floor) or when >= since
    ]
    if tail is not None:
        kept = kept[len(kept) - tail :] if tail else []
    return kept
