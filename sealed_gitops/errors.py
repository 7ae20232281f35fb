"""The one error tree of sealed-gitops.

Every failure the project expects is one of these classes; third-party exceptions (cryptography,
pyrage, gnupg, hvac, GitPython, kubernetes, aiohttp) are caught at the boundary that calls them and
re-raised as one of these with ``raise ... from exc``, so callers never need to know which library
did the work. The CLI maps them to one line and a non-zero exit; the operator maps them to a
condition reason.

::

    SealedGitopsError                 base; message always passes through redact/
    ├── InputError                    the user's input is wrong; names the file and what is wrong
    │   ├── FormatError               malformed YAML/JSON, bad ENC[...] value, unknown type
    │   ├── LimitExceeded             over a limit: file size, YAML aliases, documents per file
    │   ├── NotEncryptedError         a file or Secret that should be encrypted is not
    │   ├── AlreadyEncrypted          encrypt of a file that already carries SOPS metadata
    │   ├── EmptyDocument             encrypt of a file with no document at all
    │   └── PathError                 a path that leaves the repository root, or a refused symlink
    ├── ConfigError                   bad flags, .sops.yaml, CR spec or settings
    ├── CryptoError                   a cryptographic check failed
    │   ├── MacMismatch               the SOPS MAC is missing or does not match
    │   ├── IntegrityError            tampered or truncated ciphertext (GCM tag, lengths)
    │   ├── NoMatchingKey             no available key could unwrap the data key / session key
    │   └── ScopeMismatch             a sealed value opened under a scope it was not sealed for
    ├── KeyProviderError              age / PGP / Vault / sops-binary failed (unreachable, refused)
    ├── SourceError                   git: clone, fetch, ref resolution, timeouts
    │   └── VerificationFailed        commit signature missing, bad or from an unknown signer
    ├── RenderError                   kustomize or document assembly failed
    ├── ClusterError                  the Kubernetes API refused or failed a request
    │   ├── ApiNotFound               404
    │   ├── ApiConflict               409
    │   ├── ApiForbidden              401 / 403
    │   ├── ApiUnavailable            5xx, timeouts, dropped connections
    │   └── OwnershipConflict         the object is applied by another Sync (issue 15)
    ├── AuditError                    reading history for the audit failed
    └── ControlPlaneError             the test control plane (Go build, etcd, kube-apiserver) failed

Every error carries optional ``file`` and ``key_id`` fields: invariant 2 of the architecture says a
decryption failure names the file and the key id, and the CLI prints ``file: reason``.
"""

from __future__ import annotations

__all__ = [
    "AlreadyEncrypted",
    "ApiConflict",
    "ApiForbidden",
    "ApiNotFound",
    "ApiUnavailable",
    "AuditError",
    "ClusterError",
    "ConfigError",
    "ControlPlaneError",
    "CryptoError",
    "EmptyDocument",
    "FormatError",
    "InputError",
    "IntegrityError",
    "KeyProviderError",
    "LimitExceeded",
    "MacMismatch",
    "NoMatchingKey",
    "NotEncryptedError",
    "OwnershipConflict",
    "PathError",
    "RenderError",
    "ScopeMismatch",
    "SealedGitopsError",
    "SourceError",
    "VerificationFailed",
]


class SealedGitopsError(Exception):
    """Base of every expected failure.

    ``reason`` is the human sentence; ``file`` and ``key_id`` locate the failure. The rendered
    message is redacted at the moment it is produced, so a value registered with
    :mod:`sealed_gitops.redact` cannot reach a log or a terminal through ``str(exc)``.
    """

    #: a short, stable, machine-readable reason (used as a condition reason and in JSON output)
    code: str = "Error"

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        key_id: str | None = None,
        location: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.key_id = key_id
        self.location = location
        super().__init__(reason)

    def __repr__(self) -> str:
        # repr() is what %r in a log line and a debugger show: redacted like str().
        return f"{type(self).__name__}({str(self)!r})"

    def __str__(self) -> str:
        # Imported here because the redact package must stay importable without errors.py in cycles.
        from sealed_gitops.redact import Identity, compose

        # Invariant 8: the file, the place in it and the key id are identities (from Git and the
        # keys), never blanked by a value that happens to equal them; only the reason is text.
        parts: list[str] = []
        if self.file:
            where = self.file if not self.location else f"{self.file} ({self.location})"
            parts += [Identity(where), ": "]
        elif self.location:
            parts += [Identity(self.location), ": "]
        parts.append(self.reason)
        if self.key_id:
            parts += [" [key ", Identity(self.key_id), "]"]
        return compose(*parts)

    def with_file(self, file: str) -> SealedGitopsError:
        """Attach a file name if none is set yet, and return self (for re-raising)."""
        if self.file is None:
            self.file = file
        return self


class InputError(SealedGitopsError):
    code = "InvalidInput"


class FormatError(InputError):
    code = "FormatError"


class LimitExceeded(InputError):
    code = "LimitExceeded"


class NotEncryptedError(InputError):
    code = "NotEncrypted"


class PathError(InputError):
    code = "PathRefused"


class ConfigError(SealedGitopsError):
    code = "ConfigError"


class CryptoError(SealedGitopsError):
    code = "DecryptionFailed"


class MacMismatch(CryptoError):
    code = "MacMismatch"


class IntegrityError(CryptoError):
    code = "IntegrityError"


class NoMatchingKey(CryptoError):
    code = "NoMatchingKey"


class ScopeMismatch(CryptoError):
    code = "ScopeMismatch"


class KeyProviderError(SealedGitopsError):
    code = "KeyProviderFailed"


class SourceError(SealedGitopsError):
    code = "SourceFailed"


class VerificationFailed(SourceError):
    code = "VerificationFailed"


class RenderError(SealedGitopsError):
    code = "BuildFailed"


class ClusterError(SealedGitopsError):
    code = "ApplyFailed"

    def __init__(self, reason: str, *, status: int | None = None, **kwargs: str | None) -> None:
        super().__init__(reason, **kwargs)
        self.status = status


class ApiNotFound(ClusterError):
    code = "NotFound"


class ApiConflict(ClusterError):
    code = "Conflict"


class ApiForbidden(ClusterError):
    code = "Forbidden"


class ApiUnavailable(ClusterError):
    code = "Unavailable"


class OwnershipConflict(ClusterError):
    """The object is live under another Sync that still exists and lists it in its inventory.

    Raised (as an object's outcome, not thrown) by :mod:`sealed_gitops.cluster.conflicts`; the
    first owner keeps the object, and ``owner`` (``NAMESPACE/NAME``) names it.
    """

    code = "OwnershipConflict"

    def __init__(self, reason: str, *, owner: str) -> None:
        super().__init__(reason)
        self.owner = owner


class AuditError(SealedGitopsError):
    code = "AuditFailed"


class AlreadyEncrypted(InputError):
    """``encrypt`` of a file that already carries SOPS metadata (sops exits 203)."""

    code = "AlreadyEncrypted"


class EmptyDocument(InputError):
    """``encrypt`` of a file with no document at all (sops exits 92)."""

    code = "EmptyDocument"


class ControlPlaneError(SealedGitopsError):
    """The real control plane for tests could not be built or started.

    Raised by :mod:`sealed_gitops.testing.control_plane` when Go is missing or too old, ``go build``
    fails, or etcd / kube-apiserver / kube-controller-manager exit or do not become ready; the
    message ends with the tail of the tool's output, which is what a person needs to act on it.
    """

    code = "ControlPlaneFailed"
