"""Post-build variable substitution (a Sync's ``postBuild``), over objects held in memory.

Why a render stage of its own, and why it works the way it does: Flux replaces ``${VAR}`` in the
text of a kustomize build, which lets a value change the structure around it (a newline and a
``namespace:`` line) and lets any value land anywhere. This project keeps one rule above all:
plaintext reaches nothing but Secret objects. So substitution here runs *after* decryption, on
the parsed objects, one string at a time:

- a value replaces text inside one string (a value, or a mapping key); it can never add a field,
  so the object's shape is the one committed. Only a string that is exactly one ``${VAR}``, in a
  field that is not string-typed by nature (labels, annotations, ``data``, env ``value``,
  ``args``/``command``), takes the value's YAML type, so ``replicas: ${REPLICAS}`` stays a number
  as in Flux;
- a value that came from a Secret (``substituteFrom`` of kind Secret) is substituted only into a
  value directly under ``data`` or ``stringData`` of a v1 Secret; anywhere else the object fails
  with an error naming the file, the object and the variable (never the value);
- an object decrypted from Git keeps the kind, name and namespace its file gave it: the
  decryption stage checked the scope and binding against those, so substitution may not move it;
- replacement is one pass: substituted text is never scanned again, so no value can expand
  another (no recursion, no bomb); values and the total growth of a build are bounded
  (:class:`Bounds`).

The grammar is the part of Flux's envsubst people use: ``${NAME}``, ``${NAME:-default}`` and
``${NAME:=default}`` (default when unset or empty), ``${NAME-default}`` and ``${NAME=default}``
(default when unset), names ``[_a-zA-Z][_a-zA-Z0-9]*``, ``$${NAME}`` for a literal ``${NAME}``.
An unset variable without a default becomes the empty string, as Flux does by default. Objects
with the annotation or label ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left alone.
Placement and tenancy run after this stage, on the substituted objects.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sealed_gitops.errors import FormatError, LimitExceeded, RenderError, SealedGitopsError
from sealed_gitops.plan import ObjectId
from sealed_gitops.redact import register
from sealed_gitops.render.decrypt import RenderedObject
from sealed_gitops.render.document import DocKind, Failure

__all__ = [
    "DISABLE_KEY",
    "NAME_PATTERN",
    "Bounds",
    "Origin",
    "Variable",
    "Variables",
    "expand",
    "substitute_objects",
]

#: Flux's variable-name rule; the CRD's ``propertyNames`` pattern says the same.
NAME_PATTERN = r"^[_a-zA-Z][_a-zA-Z0-9]*$"
_NAME = re.compile(NAME_PATTERN)
#: annotation or label that turns substitution off for one object (Flux's key and value)
DISABLE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
_DISABLED = "disabled"

# One alternation, no nested quantifiers: linear in the text (invariant 7). The escape comes
# first so ``$${X}`` is consumed as a whole before ``${X}`` could match inside it.
_EXPR = re.compile(r"\$\$\{|\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-=])([^}]*))?\}")

#: top-level fields whose values the API keeps as strings whatever they look like
_STRING_MAPS = frozenset({"data", "stringData", "binaryData"})
_STRING_META = frozenset({"labels", "annotations"})
_STRING_LISTS = frozenset({"args", "command"})


class Origin(enum.Enum):
    """Where a variable's value came from: it decides where the value may go."""

    INLINE = "substitute"
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"  # noqa: S105 - a kind name, not a password


@dataclass(frozen=True)
class Variable:
    """One variable's value and its source (``Secret team-a/vars``), for errors."""

    value: str
    origin: Origin
    source: str


@dataclass(frozen=True)
class Bounds:
    """What substitution may cost, per build."""

    #: UTF-8 bytes of one value; a ConfigMap value may be a whole file, a variable rarely is
    max_value_bytes: int = 256 * 1024
    #: variables in all sources together
    max_variables: int = 4096
    #: bytes a build may grow by through substitution: the loader's expansion cap, since a
    #: 256 KiB value referenced 100,000 times would otherwise be 25 GiB in memory
    max_growth_bytes: int = 20 * 1024 * 1024


DEFAULT_BOUNDS = Bounds()


@dataclass(frozen=True)
class Variables:
    """The variables of one Sync, each source's entries layered in order (later wins).

    Comparable and hashable, so a build's substitution can be memoised on it.
    """

    entries: tuple[tuple[str, Variable], ...] = ()

    @classmethod
    def layered(
        cls, layers: Sequence[Mapping[str, Variable]], *, bounds: Bounds = DEFAULT_BOUNDS
    ) -> Variables:
        """Variables from ``layers``, a later layer overriding an earlier one: Flux's order is
        the ``substituteFrom`` entries in order, then ``substitute`` last (it wins)."""
        merged: dict[str, Variable] = {}
        for layer in layers:
            for name, variable in layer.items():
                if not _NAME.match(name):
                    raise FormatError(
                        f"{variable.source}: {name[:64]!r} is not a variable name "
                        "(letters, digits and '_', not starting with a digit)"
                    )
                if len(variable.value.encode("utf-8", "surrogatepass")) > bounds.max_value_bytes:
                    raise LimitExceeded(
                        f"{variable.source}: the value of {name} is over "
                        f"{bounds.max_value_bytes} bytes"
                    )
                if variable.origin is Origin.SECRET:
                    register(variable.value)  # masked in every message from now on
                merged[name] = variable
        if len(merged) > bounds.max_variables:
            raise LimitExceeded(f"more than {bounds.max_variables} postBuild variables")
        return cls(tuple(sorted(merged.items())))

    def lookup(self) -> dict[str, Variable]:
        return dict(self.entries)


class _Refused(Exception):
    """A variable used where its value may not go; the caller names the object."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Budget:
    left: int


def expand(
    text: str,
    variables: Mapping[str, Variable],
    *,
    allow_secret: bool = False,
    budget: _Budget | None = None,
) -> str:
    """``text`` with every ``${...}`` replaced, in one pass; text without ``$`` is returned as
    it is. A variable from a Secret raises unless ``allow_secret``."""
    if "$" not in text:
        return text
    # The growth check sits inside the replacement: a build that would blow up stops at the
    # first replacement over the limit, not after it built the whole string.

    def replace_one(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if default is not None and "${" in default:
            raise _Refused(f"${{{name}...}}: a default may not hold another variable")
        variable = variables.get(name)
        if variable is not None and variable.origin is Origin.SECRET and not allow_secret:
            raise _Refused(
                f"variable {name} comes from {variable.source}; a value from a Secret is "
                "substituted only into the data or stringData of a v1 Secret"
            )
        value = None if variable is None else variable.value
        if operator is not None:
            unset_only = not operator.startswith(":")
            if value is None or (not unset_only and value == ""):
                value = default
        value = value or ""
        if budget is not None:
            budget.left -= len(value) - len(whole)
            if budget.left < 0:
                raise LimitExceeded("postBuild substitution grows the build over its limit")
        return value

    return _EXPR.sub(replace_one, text)


def _disabled(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return False
    for block in ("annotations", "labels"):
        values = meta.get(block)
        if isinstance(values, Mapping) and values.get(DISABLE_KEY) == _DISABLED:
            return True
    return False


_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


def _typed(value: str) -> Any:
    """``value`` as a YAML 1.2 core-schema plain scalar reads: number, boolean, else string."""
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        number = float(value)
        return number if math.isfinite(number) else value
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    return value


def _string_typed(path: tuple[str | int, ...]) -> bool:
    """Fields the API keeps as strings: a whole ``${VAR}`` there stays a string."""
    if path and path[0] in _STRING_MAPS:
        return True
    if len(path) >= 2 and path[0] == "metadata" and path[1] in _STRING_META:
        return True
    if path and path[-1] == "value":
        return True
    return len(path) >= 2 and isinstance(path[-1], int) and path[-2] in _STRING_LISTS


def _dotted(path: tuple[str | int, ...]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text[:120] or "(root)"


class _Walker:
    """Substitutes every string of one object; returns the very same containers when nothing
    in them changed, so an object without variables costs no copy."""

    def __init__(self, variables: Mapping[str, Variable], budget: _Budget, *, secret: bool):
        self.variables = variables
        self.budget = budget
        self.secret = secret

    def walk(self, value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            changed = False
            for key, item in value.items():
                new_key = self.key(key, path) if isinstance(key, str) else key
                new_item = self.walk(item, (*path, str(new_key)))
                changed |= new_key is not key or new_item is not item
                if new_key in out:
                    raise _Refused(f"substitution makes key {new_key[:64]!r} appear twice")
                out[new_key] = new_item
            return out if changed else value
        if isinstance(value, list):
            items = [self.walk(item, (*path, i)) for i, item in enumerate(value)]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        return value

    def key(self, key: str, path: tuple[str | int, ...]) -> str:
        try:
            new = expand(key, self.variables, budget=self.budget)
        except _Refused as exc:
            raise _Refused(f"{exc.reason} (used in a key under {_dotted(path)})") from None
        return key if new == key else new

    def string(self, text: str, path: tuple[str | int, ...]) -> Any:
        if "$" not in text:
            return text
        allow = self.secret and len(path) == 2 and path[0] in ("data", "stringData")
        try:
            new = expand(text, self.variables, allow_secret=allow, budget=self.budget)
        except _Refused as exc:
            raise _Refused(f"{exc.reason} (used at {_dotted(path)})") from None
        if new == text:
            return text
        match = _EXPR.fullmatch(text)
        if match is not None and match.group(0) != "$${" and not _string_typed(path):
            return _typed(new)
        return new


def _substitute_one(
    rendered: RenderedObject, variables: Mapping[str, Variable], budget: _Budget
) -> RenderedObject:
    obj = rendered.data
    if _disabled(obj):
        return rendered
    secret = obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"
    new = _Walker(variables, budget, secret=secret).walk(obj, ())
    if new is obj:
        return rendered
    try:
        obj_id = ObjectId.of(new)  # the substituted name and namespace, checked as Kubernetes does
    except FormatError as exc:
        raise _Refused(f"after substitution, {exc.reason}") from None
    if obj_id != rendered.id and rendered.source is not DocKind.PLAIN:
        raise _Refused(
            f"substitution would change the identity of an object decrypted from Git to "
            f"{obj_id.describe()}; an encrypted object's kind, name and namespace are the ones "
            "its file gives"
        )
    return replace(rendered, id=obj_id, data=new)


def substitute_objects(
    objects: Sequence[RenderedObject],
    variables: Variables,
    *,
    bounds: Bounds = DEFAULT_BOUNDS,
    failures: list[Failure] | None = None,
) -> list[RenderedObject]:
    """``objects`` with the variables substituted; the same list when none has a variable.

    With ``failures`` (the isolate policy) a failing object is listed there and left out;
    without it the first failure raises. Errors name the file, the object and the variable.
    """
    lookup = variables.lookup()
    budget = _Budget(bounds.max_growth_bytes)
    out: list[RenderedObject] = []
    seen: dict[ObjectId, RenderedObject] = {}
    for rendered in objects:
        try:
            try:
                done = _substitute_one(rendered, lookup, budget)
            except _Refused as exc:
                raise RenderError(
                    f"{rendered.id.describe()}: postBuild: {exc.reason}",
                    file=rendered.file,
                    location=f"document {rendered.index}",
                ) from None
            if done.id in seen:
                raise RenderError(
                    f"after postBuild substitution {done.id.describe()} is also defined in "
                    f"{seen[done.id].location}",
                    file=rendered.file,
                    location=f"document {rendered.index}",
                )
        except SealedGitopsError as exc:
            if isinstance(exc, LimitExceeded) or failures is None:
                exc.with_file(rendered.file)
                raise
            failures.append(
                Failure(
                    file=rendered.file,
                    index=rendered.index,
                    object=rendered.id.describe(),
                    reason=exc.reason,
                    error=exc,
                )
            )
            continue
        seen[done.id] = done
        out.append(done)
    if len(out) == len(objects) and all(a is b for a, b in zip(out, objects, strict=True)):
        return list(objects)
    return out
