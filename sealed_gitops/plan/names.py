"""The one place where a name or namespace from a tenant's object is checked before it is used.

Why: an attack review (issue 11, finding 1) reached other tenants' Secrets with reference names
such as ``../../team-a/secrets/sops-keys``: the name was put into an API path as it was, and the
HTTP client normalised the ``..`` away before sending. Kubernetes itself only admits names of a
few shapes (RFC 1123 DNS labels and subdomains); a name of any other shape cannot name an object
in the cluster, so refusing it loses nothing and closes every path trick at once. Every name or
namespace that reaches a URL, a Vault path or a cache key goes through a function here first, and
each path segment is also percent-quoted (:func:`segment`) as a second wall.

Pure: no I/O, so every layer from ``cluster/`` up may import it.
"""

from __future__ import annotations

import re
from typing import TypeGuard
from urllib.parse import quote

from sealed_gitops.errors import ConfigError
from sealed_gitops.redact import cut

__all__ = [
    "DNS1123_LABEL_MAX",
    "DNS1123_LABEL_PATTERN",
    "DNS1123_SUBDOMAIN_MAX",
    "DNS1123_SUBDOMAIN_PATTERN",
    "InvalidName",
    "is_label",
    "is_path_segment_name",
    "is_subdomain",
    "label",
    "namespace",
    "object_name",
    "segment",
]

#: RFC 1123 label as Kubernetes checks it (``IsDNS1123Label``): namespaces, Services.
DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL_MAX = 63
#: RFC 1123 subdomain (``IsDNS1123Subdomain``): the names of Secrets, ConfigMaps and our kinds.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX = 253

_LABEL = re.compile(DNS1123_LABEL_PATTERN)
_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_PATTERN)


class InvalidName(ConfigError):
    """A name or namespace that Kubernetes would not admit (Ready reason InvalidName; Stalled,
    since only a change of the spec helps)."""

    code = "InvalidName"


def is_label(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str)
        and 0 < len(value) <= DNS1123_LABEL_MAX
        and _LABEL.fullmatch(value) is not None
    )


def is_subdomain(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str)
        and 0 < len(value) <= DNS1123_SUBDOMAIN_MAX
        and _SUBDOMAIN.fullmatch(value) is not None
    )


def is_path_segment_name(value: object) -> TypeGuard[str]:
    """What Kubernetes admits as the name of any object (``IsValidPathSegmentName``): kinds
    such as ClusterRole allow ``:`` and more, but never ``/``, ``%``, ``.`` or ``..``, which
    would change the URL the name is put into."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= DNS1123_SUBDOMAIN_MAX
        and value not in (".", "..")
        and "/" not in value
        and "%" not in value
    )


def _shown(value: object) -> str:
    # The refused value is shown, cut short and escaped, so a hostile string cannot fill a
    # status or forge a second log line; it is a name, not a secret.
    text = value if isinstance(value, str) else repr(value)
    # Redacted before it is cut (issue 11, finding 8): a name decrypted from a fully encrypted
    # document is a registered value, and half of it would no longer be recognised.
    return repr(cut(text, limit=83))


def namespace(value: object, *, field: str) -> str:
    """``value`` if it is a valid namespace (a DNS-1123 label), else :class:`InvalidName`
    naming ``field`` (for example ``spec.decryption.keyRingRef.namespace``)."""
    if not is_label(value):
        raise InvalidName(
            f"{field}: {_shown(value)} is not a valid namespace (lowercase letters, digits "
            f"and '-', at most {DNS1123_LABEL_MAX} characters, starting and ending with a "
            "letter or digit)"
        )
    return value


def object_name(value: object, *, field: str) -> str:
    """``value`` if it is a valid object name (a DNS-1123 subdomain), else :class:`InvalidName`."""
    if not is_subdomain(value):
        raise InvalidName(
            f"{field}: {_shown(value)} is not a valid object name (lowercase letters, digits, "
            f"'-' and '.', at most {DNS1123_SUBDOMAIN_MAX} characters, starting and ending "
            "with a letter or digit)"
        )
    return value


def label(value: object, *, field: str) -> str:
    """``value`` if it is a DNS-1123 label (names that must not hold dots)."""
    if not is_label(value):
        raise InvalidName(f"{field}: {_shown(value)} is not a valid DNS-1123 label")
    return value


def segment(value: str) -> str:
    """One URL path segment, percent-quoted so that no character of it can end the segment.

    A second wall behind the checks above: ``/`` and ``%`` are quoted, and ``.``/``..`` (which
    quoting leaves alone and every client normalises) are refused outright.
    """
    if value in ("", ".", ".."):
        raise InvalidName(f"{_shown(value)} cannot be a path segment")
    return quote(value, safe="")
