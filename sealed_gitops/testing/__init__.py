"""Test and sandbox tools: the Kubernetes API emulator and fixtures for the real components.

Nothing here is on the operator's code paths (``.importlinter`` forbids product code importing it).
:class:`KubeEmulator` is an aiohttp server that speaks enough of the Kubernetes API, with real
semantics (resourceVersions, conflicts, watch, server-side apply, RBAC), for kubectl, the official
Python client and kopf to run against it; see ``docs/emulator.md``.
"""

from __future__ import annotations

from sealed_gitops.testing.kube.auth import UserInfo
from sealed_gitops.testing.kube.faults import Fault, FaultInjector
from sealed_gitops.testing.kube.server import ADMIN_USER, KubeEmulator

__all__ = ["ADMIN_USER", "Fault", "FaultInjector", "KubeEmulator", "UserInfo"]
