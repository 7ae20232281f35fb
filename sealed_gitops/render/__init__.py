"""Rendering: safe YAML loading with limits, kustomize, and finding the encrypted documents.

The pipeline calls :func:`render`; the rest is exported for the CLI and for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sealed_gitops.render.document import DocKind, Document, Failure, classify, make_document
from sealed_gitops.render.loader import DEFAULT_LIMITS, Limits, load_bytes, load_file
from sealed_gitops.render.walk import IgnoreRules, Unit, walk

if TYPE_CHECKING:
    from sealed_gitops.render.build import render


def __getattr__(name: str) -> Any:
    """``render`` is imported when first read (PEP 562), not with the package.

    Why: importing any module of this package runs this file, and ``verify`` needs only
    ``render.loader``; an eager ``render.build`` pulled in kustomize, the plan package and
    subprocess, ~20 ms of that command's start-up (issue 16, start-up).
    """
    if name == "render":
        from sealed_gitops.render.build import render

        globals()["render"] = render
        return render
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LIMITS",
    "DocKind",
    "Document",
    "Failure",
    "IgnoreRules",
    "Limits",
    "Unit",
    "classify",
    "load_bytes",
    "load_file",
    "make_document",
    "render",
    "walk",
]
