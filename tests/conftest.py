"""Suite-wide settings. Fixtures for the real components live in the conftest.py of each area,
except the real control plane's: any area's cluster fixture may ask for it by name (issue 13)."""

import os
from collections.abc import Iterator

import pytest

# sops asks GitHub for its latest version at start-up; there is no network here: never wait.
os.environ.setdefault("SOPS_DISABLE_VERSION_CHECK", "true")

from sealed_gitops import redact
from tests.conftest_control_plane import (  # noqa: F401 - fixtures are found by name
    control_plane,
    control_plane_binaries,
)


@pytest.fixture(autouse=True)
def _isolated_redaction() -> Iterator[None]:
    """Values a test registers do not mask another test's output (the registry is per process)."""
    saved = redact.snapshot()
    yield
    redact.restore(saved)
