"""Fixtures of the Flux tests, made visible to pytest once for the whole folder.

The cluster, CRDs, namespaces and operators come from ``tests/operator/conftest.py`` and the real
tools (sops, age, gpg and OpenBao keys) from ``tests/conftest_tools.py``. Re-exported here and not
imported by each test module: a session fixture imported into a module is registered for that
module alone, so every module importing it started its own emulator or OpenBao server.
"""

from __future__ import annotations

from tests.conftest_tools import (  # noqa: F401 - fixtures are found by name
    age_keys,
    pgp_key,
    sops_binary,
    sops_env,
    transit,
)
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    operator_factory,
    setup,
)
