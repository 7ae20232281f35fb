"""The CLI's shared conventions, as option decorators and one parameter type each.

Why one module: the same word must mean the same thing in every command (issue 15, Must 7).
Before it, ``-o`` was a file for ``seal`` and a format for ``build`` (``seal -o json`` wrote a
file named ``json``), durations were ``1m`` in one command and float seconds in another, and
``--context`` existed on half of the commands that talk to a cluster. The rules, also written in
docs/index.md ("CLI conventions"):

- ``-o/--output FORMAT`` is always a format (``table``, ``json``, ``yaml``):
  :func:`output_option`.
- A command that writes a file takes ``-w/--output-file FILE``: :func:`output_file_option`.
- A duration is Go-style (``90s``, ``1m30s``, ``2h``, ``500ms``) or plain seconds (``120``,
  ``1.5``): :data:`DURATION`, which parses with the operator's own ``parse_duration`` so the CLI
  and the CRDs' ``interval``/``timeout`` fields read the same text the same way.
- Wherever ``--kubeconfig`` is, ``--context`` picks the kubeconfig context and ``-n/--namespace``
  the namespace: :func:`kube_options`.
- ``--output json`` prints a documented, stable list of fields per command (the ``*_FIELDS``
  tuples next to each command), never a secret value.

Only click and the standard library are imported here, so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import click

__all__ = [
    "DURATION",
    "Duration",
    "LazyModule",
    "dump_json",
    "format_duration",
    "kube_options",
    "output_file_option",
    "output_option",
    "rows_json",
    "split_ref",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Plain seconds, as the duration options took them before Go-style text was accepted.
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")


class Duration(click.ParamType[float, Any]):
    """Seconds (a float) from ``90s``, ``1m30s``, ``2h``, ``500ms``, or ``120``/``1.5``."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        text = str(value).strip()
        if _SECONDS.fullmatch(text):
            return float(text)
        # Imported here: operator.settings is light, but only commands that parse one need it.
        from sealed_gitops.errors import ConfigError
        from sealed_gitops.operator.settings import parse_duration

        try:
            if not text:  # parse_duration reads "" as "use the default"; a flag given empty is not
                raise ConfigError("empty")
            return parse_duration(text, default=0.0)
        except ConfigError:
            self.fail(
                f"{text!r} is not a duration such as 90s, 1m30s, 2h, 500ms or 120 (seconds)",
                param,
                ctx,
            )

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"


#: The one duration parameter type of the CLI.
DURATION = Duration()


def format_duration(seconds: float) -> str:
    """``90.0`` -> ``1m30s``, ``0.5`` -> ``500ms``: how messages name a duration back."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def output_option(
    *choices: str, default: str | None = None, help: str | None = None, dest: str = "output"
) -> Callable[[F], F]:
    """``-o/--output FORMAT`` with ``choices`` (the first is the default unless ``default``)."""
    chosen = default if default is not None else choices[0]
    return click.option(
        "-o",
        "--output",
        dest,
        type=click.Choice(list(choices)),
        default=chosen,
        show_default=True,
        help=help or f"Output format: {', '.join(choices)}.",
    )


def output_file_option(
    *, help: str = "Write the result to this file instead of stdout.", required: bool = False,
    dest: str = "output_file",
) -> Callable[[F], F]:  # fmt: skip
    """``-w/--output-file FILE``: where a command writes a file (``-o`` is the format)."""
    return click.option(
        "-w",
        "--output-file",
        dest,
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        metavar="FILE",
        help=help,
    )


def kube_options(
    *, namespace_help: str | None = "Namespace of the object (default: from NAMESPACE/NAME).",
    kubeconfig_env: bool = True,
) -> Callable[[F], F]:  # fmt: skip
    """``--kubeconfig``, ``--context`` and (unless ``namespace_help`` is None) ``-n/--namespace``.

    The command receives ``kubeconfig`` (a Path or None), ``context`` and ``namespace``.
    """

    def decorate(func: F) -> F:
        if namespace_help is not None:
            func = click.option("-n", "--namespace", default=None, help=namespace_help)(func)
        func = click.option(
            "--context", default=None, help="kubeconfig context (default: its current-context)."
        )(func)
        return click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="KUBECONFIG" if kubeconfig_env else None,
            help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
        )(func)

    return decorate


class LazyModule:
    """A module imported on first attribute access.

    Why: a command module's heavy imports (the kubernetes client behind ``cluster``, ~1 s) are
    needed when the command runs, not when ``sealed-gitops CMD --help`` lists its options. Use it
    as ``if TYPE_CHECKING: from pkg import mod`` / ``else: mod = LazyModule("pkg.mod")``, so
    mypy still checks every call against the real module.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def split_ref(ref: str, namespace: str | None = None, *, what: str = "") -> tuple[str, str]:
    """``NAMESPACE/NAME``, or ``NAME`` with ``-n NAMESPACE`` (as ``flux reconcile ks NAME -n``).

    ``what`` (e.g. ``Sync``) prefixes the error message when the reference is malformed.
    """
    from sealed_gitops.errors import ConfigError

    ns, sep, name = ref.partition("/")
    if not sep and namespace and ref:
        return namespace, ref
    if not sep or not ns or not name or "/" in name:
        prefix = f"{what} " if what else ""
        raise ConfigError(f"{prefix}{ref!r} is not NAMESPACE/NAME (or NAME with -n NAMESPACE)")
    if namespace and namespace != ns:
        raise ConfigError(f"{ref!r} is in namespace {ns}, but -n says {namespace}")
    return ns, name


def dump_json(value: Any) -> str:
    """The JSON every ``--output json`` prints: indented, keys in the order given."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def rows_json(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """``rows`` cut to exactly ``fields`` (in that order): the documented shape, nothing more."""
    return dump_json([{field: row.get(field) for field in fields} for row in rows])
