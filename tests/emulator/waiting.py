"""Polling helpers of the emulator suite: wait for what a real server does a moment later.

A real cluster's controllers (CRD establishment, namespace finalization, an operator's handlers)
act after the write that starts them returns, so the tests poll; one helper does it for all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from kubernetes import client

__all__ = ["crd_established", "wait_for"]

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, what: str, timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise.

    The default is generous because a loaded CI machine can take seconds to start a Python
    process with kopf.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def crd_established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    """Whether the CRD ``name`` has the Established condition (its resources are served)."""
    crd = extensions.read_custom_resource_definition(name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)
