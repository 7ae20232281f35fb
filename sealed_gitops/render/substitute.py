"""Post-build variable substitution (a Sync's ``postBuild``), over documents held in memory.

Why a render stage of its own, and why it works the way it does: Flux replaces ``${VAR}`` in the
text of a kustomize build, which lets a value change the structure around it (a newline and a
``namespace:`` line) and lets any value land anywhere. This project keeps one rule above all:
plaintext reaches nothing but Secret objects. So substitution here works on parsed documents, one
string at a time, at two moments of the pipeline (:class:`Substitution`):

- plain documents between render and decryption, so their names and namespaces may hold
  variables (``app-${ENV}``); placement and tenancy then judge the substituted objects, so a
  variable cannot move an object into a namespace the Sync may not write;
- decrypted objects after decryption (a SOPS MAC covers every value of its file, so nothing in
  it can change before it is opened); their kind, name and namespace stay the ones their file
  gives, since the decryption stage checked scopes and bindings against those.

And everywhere:

- a value replaces text inside one string (a value, or a mapping key); it can never add a field,
  so the object's shape is the one committed. Only a string that is exactly one ``${VAR}``, in a
  field that is not string-typed by nature (labels, annotations, ``data``, env ``value``,
  ``args``/``command``), takes the value's YAML type, so ``replicas: ${REPLICAS}`` stays a number
  as in Flux;
- a value that came from a Secret (``substituteFrom`` of kind Secret) is substituted only into a
  value directly under ``data`` or ``stringData`` of a v1 Secret; anywhere else the object fails
  with an error naming the file, the object and the variable (never the value), and the value is
  registered with the redaction layer the moment it is read;
- replacement is one pass: substituted text is never scanned again, so no value can expand
  another (no recursion, no bomb); values and the total growth of a build are bounded
  (:class:`Bounds`).

The grammar is the part of Flux's envsubst people use: ``${NAME}``, ``${NAME:-default}`` and
``${NAME:=default}`` (default when unset or empty), ``${NAME-default}`` and ``${NAME=default}``
(default when unset), names ``[_a-zA-Z][_a-zA-Z0-9]*``, ``$${NAME}`` for a literal ``${NAME}``,
``$NAME`` without braces left alone. An unset variable without a default becomes the empty
string, as Flux does by default. Objects with the annotation or label
``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left alone.
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
from sealed_gitops.render.document import DocKind, Document, Failure, classify

__all__ = [
    "DISABLE_KEY",
    "NAME_PATTERN",
    "Bounds",
    "Origin",
    "Substitution",
    "Variable",
    "Variables",
    "expand",
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

    # After the last "}" no ${...} can close, only "$${" escapes can match (a match never
    # straddles: it ends in "}" or is three characters none of which is "}"). Scanning the
    # regex there would try every unclosed "${NAME:-" up to the end of the text: quadratic.
    end = text.rfind("}") + 1
    return _EXPR.sub(replace_one, text[:end]) + text[end:].replace("$${", "${")


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
        try:
            return int(value)
        except ValueError:  # over int()'s digit limit: no integer Kubernetes would take
            return value
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


def _changed(
    data: Mapping[str, Any], variables: Mapping[str, Variable], budget: _Budget
) -> tuple[dict[str, Any], ObjectId] | None:
    """``data`` substituted and its (checked) id; None when nothing in it changed."""
    if _disabled(data):
        return None
    secret = data.get("kind") == "Secret" and data.get("apiVersion") == "v1"
    new = _Walker(variables, budget, secret=secret).walk(data, ())
    if new is data:
        return None
    # The render stage classified the document as committed (plain, plain Secret, SOPS,
    # SealedSecret) and later stages trust that: a variable may not change it, or
    # ``kind: ${K}`` would carry committed plaintext into a Secret past the plain-Secret rule.
    before, after = classify(data), classify(new)
    if after is not before:
        what = "a plain Secret" if after is DocKind.PLAIN_SECRET else f"a {after.value} document"
        raise _Refused(f"substitution would make a {before.value} document {what}")
    try:
        return new, ObjectId.of(new)  # the name and namespace checked as Kubernetes does
    except FormatError as exc:
        raise _Refused(f"after substitution, {exc.reason}") from None


class Substitution:
    """One build's substitution: the variables, and how much the build may still grow.

    The pipeline calls :meth:`documents` between render and decryption (plain documents: their
    identity may hold variables, and tenancy judges the result) and :meth:`objects` after it
    (decrypted objects: a SOPS MAC covers every value of its file, so they can only be
    substituted once open, and their identity stays the one their file gives). Every string is
    substituted exactly once. With ``failures`` (the isolate policy) a failing document is listed
    there and left out; without it the first failure raises. Errors name the file, the object
    and the variable, never a value.
    """

    def __init__(self, variables: Variables, *, bounds: Bounds = DEFAULT_BOUNDS) -> None:
        self.variables = variables
        self._lookup = variables.lookup()
        self._budget = _Budget(bounds.max_growth_bytes)

    def _fail(
        self,
        exc: SealedGitopsError,
        *,
        file: str,
        index: int,
        what: str | None,
        failures: list[Failure] | None,
    ) -> None:
        exc.with_file(file)
        if exc.location is None:
            exc.location = f"document {index}"
        # A build over the growth bound is refused whole: isolating it would cost the same.
        if failures is None or isinstance(exc, LimitExceeded):
            raise exc
        failures.append(Failure(file=file, index=index, object=what, reason=exc.reason, error=exc))

    def _one(self, data: Mapping[str, Any], what: str) -> tuple[dict[str, Any], ObjectId] | None:
        try:
            return _changed(data, self._lookup, self._budget)
        except _Refused as exc:
            raise RenderError(f"{what}: postBuild: {exc.reason}") from None

    def documents(
        self, documents: Sequence[Document], *, failures: list[Failure] | None = None
    ) -> list[Document]:
        """Plain documents substituted; every other document is returned as it is."""
        out: list[Document] = []
        for doc in documents:
            if doc.kind is not DocKind.PLAIN:
                out.append(doc)
                continue
            what = doc.id.describe() if doc.id else str(doc.data.get("kind") or "object")
            try:
                changed = self._one(doc.data, what)
            except SealedGitopsError as exc:
                self._fail(exc, file=doc.file, index=doc.index, what=what, failures=failures)
                continue
            out.append(doc if changed is None else replace(doc, data=changed[0], id=changed[1]))
        return out

    def objects(
        self, objects: Sequence[RenderedObject], *, failures: list[Failure] | None = None
    ) -> list[RenderedObject]:
        """Decrypted objects substituted (plain ones were done by :meth:`documents`)."""
        out: list[RenderedObject] = []
        for rendered in objects:
            if rendered.source is DocKind.PLAIN:
                out.append(rendered)
                continue
            what = rendered.id.describe()
            try:
                changed = self._one(rendered.data, what)
                if changed is not None and changed[1] != rendered.id:
                    raise RenderError(
                        f"{what}: postBuild: substitution would change the identity of an "
                        f"object decrypted from Git to {changed[1].describe()}; its kind, name "
                        "and namespace are the ones its file gives"
                    )
            except SealedGitopsError as exc:
                self._fail(
                    exc, file=rendered.file, index=rendered.index, what=what, failures=failures
                )
                continue
            out.append(rendered if changed is None else replace(rendered, data=changed[0]))
        return out
