"""Which Repositories, Syncs and KeyRings one operator reconciles, when several split the work.

Why shards: one leader does every fetch, decryption and apply of the cluster; past a few hundred
Syncs that one process is the bottleneck, and a standby adds nothing but failover. As Flux does
with ``sharding.fluxcd.io/key``, objects carry a label (:data:`SHARD_LABEL`), each operator
Deployment started with ``--shard NAME`` takes the objects labelled ``NAME``, and the operator
started without ``--shard`` takes the objects *without* the label, so every object has exactly
one owner and a new label value with no operator behind it is simply not reconciled (never
reconciled twice). ``--selector`` replaces the label rule with any Kubernetes label selector
(equality, ``in``/``notin``, ``key``/``!key``), so a cluster that already labels its objects
for Flux can keep ``sharding.fluxcd.io/key``.

Why a shard needs more than a filter: each shard elects its own leader (its own Lease,
:meth:`Shard.lease_name`), and uses its own finalizer (:meth:`Shard.finalizer`). kopf removes
its finalizer from every object it sees that no handler of its own matches, so with one shared
finalizer name each shard would strip the finalizer the owning shard had put on, and the two
would patch the object back and forth (and a deletion could skip its prune).

A shard name comes from a command line, a manifest, a template: it is checked as a DNS-1123
label (:func:`shard_name`) before it becomes part of a Lease name, a finalizer or a selector, and
a selector is parsed once, with bounded length and linear-time patterns, into :class:`Shard`.

Light on purpose: settings.py builds the default :class:`Shard` for every ``OperatorSettings``,
and ``sealed-gitops operator --help`` imports settings; ``plan.names`` (which pulls in the whole
``plan`` package) is imported only when a name is checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sealed_gitops.errors import ConfigError

__all__ = [
    "FLUX_SHARD_LABEL",
    "LEASE_BASE",
    "SHARD_LABEL",
    "Requirement",
    "Shard",
    "parse_selector",
    "shard_name",
]

#: The label that assigns an object to a shard (Flux's equivalent: ``sharding.fluxcd.io/key``).
SHARD_LABEL = "sealed-gitops.io/shard"
FLUX_SHARD_LABEL = "sharding.fluxcd.io/key"
#: The Lease of the unsharded operator; a shard's is ``<LEASE_BASE>-<shard>``.
LEASE_BASE = "sealed-gitops-operator"
#: kopf's finalizer for the unsharded operator (the name every install before shards used).
UNSHARDED_FINALIZER = "sealed-gitops.io/finalizer"
#: Longest selector accepted: a selector is a few requirements, not a document.
MAX_SELECTOR = 1024

Operator = Literal["in", "notin", "exists", "!exists"]

# Kubernetes' qualified name (label keys): an optional DNS-1123 subdomain prefix and a name of
# at most 63 characters; and label values. No nested quantifiers: linear time on any input.
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_SET = re.compile(r"(\S+)\s+(in|notin)\s*\(([^()]*)\)")
_EQUALITY = re.compile(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)")


def shard_name(value: object, *, field: str = "--shard") -> str:
    """``value`` if it is a DNS-1123 label, else :class:`~sealed_gitops.plan.names.InvalidName`:
    a shard name ends up in a Lease name, a finalizer and a label selector."""
    from sealed_gitops.plan import names

    return names.label(value, field=field)


def _key(text: str) -> str:
    from sealed_gitops.plan import names

    prefix, slash, name = text.rpartition("/")
    valid = (
        0 < len(name) <= 63
        and _NAME.fullmatch(name) is not None
        and (not slash or names.is_subdomain(prefix))
    )
    if not valid:
        raise ConfigError(f"selector: {text[:80]!r} is not a valid label key")
    return text


def _value(text: str) -> str:
    if len(text) > 63 or _VALUE.fullmatch(text) is None:
        raise ConfigError(f"selector: {text[:80]!r} is not a valid label value")
    return text


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector, with Kubernetes' meaning: ``notin`` (and ``!=``) also
    match an object without the key."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!exists":
            return f"!{self.key}"
        return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"


def _requirement(text: str) -> Requirement:
    if text.startswith("!"):
        return Requirement(_key(text[1:].strip()), "!exists")
    found = _SET.fullmatch(text)
    if found:
        values = [v.strip() for v in found.group(3).split(",")]
        if not any(values):
            raise ConfigError(f"selector: {text[:80]!r} needs at least one value")
        op: Operator = "in" if found.group(2) == "in" else "notin"
        return Requirement(_key(found.group(1)), op, frozenset(_value(v) for v in values))
    found = _EQUALITY.fullmatch(text)
    if found:
        op = "notin" if found.group(2) == "!=" else "in"
        return Requirement(_key(found.group(1)), op, frozenset({_value(found.group(3))}))
    return Requirement(_key(text), "exists")


def _split(text: str) -> list[str]:
    """Requirements are separated by commas outside parentheses (``a in (x,y),b``)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """A label selector (``kubectl -l`` syntax) as requirements that all must hold."""
    if len(text) > MAX_SELECTOR:
        raise ConfigError(f"selector: longer than {MAX_SELECTOR} characters")
    parts = _split(text.strip())
    if not text.strip() or not all(parts):
        raise ConfigError(f"selector: {text[:80]!r} has an empty requirement")
    return tuple(_requirement(part) for part in parts)


@dataclass(frozen=True)
class Shard:
    """The objects one operator owns: those whose labels match every requirement."""

    #: the shard's name (None: the unsharded operator), validated as a DNS-1123 label
    name: str | None
    requirements: tuple[Requirement, ...]

    @classmethod
    def of(cls, name: str | None = None, *, selector: str | None = None) -> Shard:
        """``--shard NAME`` (``sealed-gitops.io/shard=NAME``), no name (objects without the
        label), or ``--selector`` in place of the label rule (the name then names the Lease)."""
        checked = None if name is None else shard_name(name)
        if selector is not None:
            return cls(checked, parse_selector(selector))
        if checked is None:
            return cls(None, (Requirement(SHARD_LABEL, "!exists"),))
        return cls(checked, (Requirement(SHARD_LABEL, "in", frozenset({checked})),))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """True when an object with these labels is this operator's to reconcile."""
        found = labels or {}
        return all(r.matches(found) for r in self.requirements)

    def owns(self, body: Mapping[str, Any] | None) -> bool:
        """:meth:`matches` on an object as read from the API."""
        labels = ((body or {}).get("metadata") or {}).get("labels")
        return self.matches(labels if isinstance(labels, Mapping) else None)

    def lease_name(self, base: str = LEASE_BASE) -> str:
        """The Lease this shard's replicas elect their leader on."""
        return base if self.name is None else f"{base}-{self.name}"

    @property
    def finalizer(self) -> str:
        """kopf's finalizer for this shard's objects (see the module docstring for why)."""
        return UNSHARDED_FINALIZER if self.name is None else f"shard.sealed-gitops.io/{self.name}"

    @property
    def selector(self) -> str:
        """The selector in ``kubectl -l`` syntax (logs, ``kubectl get -l`` to list the shard)."""
        return ",".join(str(r) for r in self.requirements)

    # kopf's ``when=`` filters: called with the object's labels among other keyword arguments.
    def kopf_owned(self, *, labels: Mapping[str, str], **_: Any) -> bool:
        return self.matches(labels)

    def kopf_foreign(self, *, labels: Mapping[str, str], **_: Any) -> bool:
        return not self.matches(labels)

    def __str__(self) -> str:
        return f"shard {self.name or '(unsharded)'} ({self.selector})"
