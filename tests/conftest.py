"""Suite-wide settings. Fixtures for the real components live in the conftest.py of each area."""

import os

# sops asks GitHub for its latest version at start-up; there is no network here: never wait.
os.environ.setdefault("SOPS_DISABLE_VERSION_CHECK", "true")
