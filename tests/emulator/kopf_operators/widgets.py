"""A small kopf operator the fidelity tests run as a subprocess against the emulator (or a cluster).

It exercises what a real operator leans on: a finalizer (kopf adds one because of the delete
handler), status patches (through the status subresource), handler progress stored in annotations
(JSON patches with ``test`` ops and merge patches), Events, and watches resumed by resourceVersion.

Only objects labelled ``fidelity-run=$FIDELITY_RUN`` are handled, so several test runs against one
shared cluster never touch each other's objects. Every handler appends one line to
``$FIDELITY_LOG`` so the test can tell which handlers ran, and in what order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kopf

GROUP = "fidelity.sealed-gitops.io"
RUN = os.environ["FIDELITY_RUN"]
LOG = Path(os.environ["FIDELITY_LOG"])
LABELS = {"fidelity-run": RUN}


def _record(event: str, namespace: str | None, name: str | None) -> None:
    with LOG.open("a", encoding="utf-8") as log:
        log.write(f"{event} {namespace}/{name}\n")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Short server-side watch timeouts make the operator re-list and resume often, which is
    # exactly the path (resourceVersion resume, bookmarks) worth exercising.
    settings.watching.server_timeout = 5
    settings.watching.client_timeout = 10
    # Only explicit kopf.info()/kopf.event() calls become Events (kopf >= 1.40 default); the
    # log-to-Event bridge stays off as it would in production.
    settings.posting.loggers = False


@kopf.on.create(GROUP, "v1", "widgets", labels=LABELS)
def created(
    body: kopf.Body, spec: kopf.Spec, namespace: str | None, name: str, patch: kopf.Patch, **_: Any
) -> dict[str, Any]:
    _record("create", namespace, name)
    kopf.info(body, reason="WidgetCreated", message=f"widget of size {spec.get('size')}")
    patch.status["phase"] = "Created"
    patch.status["observedSize"] = spec.get("size")
    # The return value lands in status.created: a second status write in the same patch.
    return {"message": f"widget of size {spec.get('size')}"}


@kopf.on.update(GROUP, "v1", "widgets", labels=LABELS)
def updated(spec: kopf.Spec, namespace: str | None, name: str, patch: kopf.Patch, **_: Any) -> None:
    _record("update", namespace, name)
    patch.status["phase"] = "Updated"
    patch.status["observedSize"] = spec.get("size")


@kopf.on.delete(GROUP, "v1", "widgets", labels=LABELS)
def deleted(namespace: str | None, name: str, **_: Any) -> None:
    _record("delete", namespace, name)
