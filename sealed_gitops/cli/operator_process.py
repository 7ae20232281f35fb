"""What the operator process sets up before it runs: logging that always redacts, and signals.

Why apart from :mod:`.operator_cmds` (the command and its flags): these decide what leaves the
process (every log line passes the redacting filter on the root handler, JSON lines for log
shippers) and how it stops (SIGTERM and SIGINT set the operator's stop flag whenever they come,
so a pod stopped at any moment releases its Lease). Both are process-wide state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

from sealed_gitops.operator import log_context
from sealed_gitops.redact import RedactingFilter, install_logging_filter, redact

__all__ = [
    "EARLY_STOP",
    "STOP_SIGNALS",
    "JsonFormatter",
    "StopOnSignalLoop",
    "configure_logging",
    "early_signal",
    "stop_on",
]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (redacted by the filter)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        # kopf's per-object loggers say which object a line is about; the project's own lines
        # in a reconcile loop get it from the loop's context (`sealed-gitops logs` filters on it).
        ref = getattr(record, "k8s_ref", None) or log_context.current()
        if isinstance(ref, dict):
            line["object"] = {k: ref.get(k) for k in ("kind", "namespace", "name") if ref.get(k)}
        return json.dumps(line, sort_keys=False)


def configure_logging(*, log_format: str, level: int) -> None:
    """Root logging for the operator process: one stderr handler, always redacting, and the
    audit lines on stdout.

    Filters on the root *logger* do not see records propagated from child loggers; a filter on
    the root *handler* does, so that is where the redaction must sit. kopf's loggers propagate to
    the root; any handler they carry gets the filter too.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_logging_filter()
    for name in list(logging.Logger.manager.loggerDict):
        if name == "kopf" or name.startswith("kopf."):
            install_logging_filter(logging.getLogger(name))
    # Quiet libraries whose debug chatter (URLs with tokens in query strings, headers) is noise.
    for noisy in ("urllib3", "kubernetes", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # Who changed which Secret key: one JSON line each on stdout, whatever the log level, apart
    # from the diagnostics on stderr (issue 8: log shippers read it as a record of changes).
    # Imported here, as the other heavy modules: `operator --help` needs none of them.
    from sealed_gitops.audit.log import install_audit_stream

    install_audit_stream()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Ts = TypeVarTuple("_Ts")


class StopOnSignalLoop(asyncio.SelectorEventLoop):
    """An event loop on which SIGTERM and SIGINT always mean "set the operator's stop flag".

    kopf installs its own handlers for both signals when it runs in the main thread; on that
    path its stop-flag waiter stays pending and shutdown sits out kopf's 5-second grace for
    hung tasks. Routing every handler for these signals to our flag makes a signal take the
    same quick path as a programmatic stop (the Lease is released either way).
    """

    stop_flag: asyncio.Event | None = None

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        if self.stop_flag is not None and sig in STOP_SIGNALS:
            super().add_signal_handler(sig, stop_on, self.stop_flag, signal.Signals(sig).name)
            return
        super().add_signal_handler(sig, callback, *args)


#: Set by a SIGTERM/SIGINT that arrives before the event loop has its handlers (the web view
#: starts first): without it such a signal killed the process with the default action, so a
#: pod stopped during start-up never released what it held.
EARLY_STOP = threading.Event()


def early_signal(signum: int, _frame: object) -> None:
    EARLY_STOP.set()


def stop_on(stop: asyncio.Event, name: str) -> None:
    if not stop.is_set():
        logging.getLogger("sealed_gitops.cli.operator").info("%s received, stopping", name)
    stop.set()
