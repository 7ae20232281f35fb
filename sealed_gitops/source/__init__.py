"""Git sources: fetch, ref selection and commit signature verification.

The one entry point is :func:`fetch` (and :func:`check` for "is there a new commit?"); everything
else here is the vocabulary of its inputs and outputs.
"""

from __future__ import annotations

from sealed_gitops.source.auth import (
    DEFAULT_SCHEMES,
    Auth,
    HttpAuth,
    SshAuth,
    auth_from_secret_data,
)
from sealed_gitops.source.cache import Person, default_cache_dir
from sealed_gitops.source.fetch import DEFAULT_TIMEOUT, Artifact, check, fetch
from sealed_gitops.source.refs import Ref, format_revision
from sealed_gitops.source.transport import GitResult, GitRunner
from sealed_gitops.source.verify import Verification, VerifyMode

__all__ = [
    "DEFAULT_SCHEMES",
    "DEFAULT_TIMEOUT",
    "Artifact",
    "Auth",
    "GitResult",
    "GitRunner",
    "HttpAuth",
    "Person",
    "Ref",
    "SshAuth",
    "Verification",
    "VerifyMode",
    "auth_from_secret_data",
    "check",
    "default_cache_dir",
    "fetch",
    "format_revision",
]
