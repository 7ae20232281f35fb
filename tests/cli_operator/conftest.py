"""Fixtures of the operator CLI tests: the operator end-to-end fixtures, reused.

The cluster (emulator or SEALED_GITOPS_E2E_KUBECONFIG), the CRDs, a namespace per test with a Git
remote and an age key, and in-process operators come from ``tests/operator/conftest.py``, so both
areas set up the world the same way.
"""

from __future__ import annotations

from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    emulator,
    kubeconfig,
    kubectl_path,
    operator_factory,
    setup,
)

#: Every plaintext value in these tests starts so; no output may contain it.
CANARY = "cli-op-canary-"


def tamper(text: str) -> str:
    """Flip one character of the first ciphertext in a SOPS file."""
    start = text.index("ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
    return text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1 :]
