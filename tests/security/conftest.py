"""Fixtures of the security tests, made visible to pytest once for the whole folder.

The cluster, CRDs, namespaces and operators come from ``tests/operator/conftest.py`` and the real
tools from ``tests/conftest_tools.py``. Re-exported here and not imported by each test module: a
session fixture imported into a module is registered for that module alone, so every module
importing it started its own emulator.
"""

from __future__ import annotations

from tests.conftest_tools import age_keys, sops_binary, transit  # noqa: F401 - found by name
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    _cluster,
    client,
    crds,
    emulator,
    kubeconfig,
    kubectl_path,
    operator_factory,
    setup,
)
