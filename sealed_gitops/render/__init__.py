"""Rendering: safe YAML loading with limits, kustomize, and finding the encrypted documents.

The pipeline calls :func:`render`; the rest is exported for the CLI and for tests.
"""

from __future__ import annotations

from sealed_gitops.render.build import render
from sealed_gitops.render.document import DocKind, Document, Failure, classify, make_document
from sealed_gitops.render.loader import DEFAULT_LIMITS, Limits, load_bytes, load_file
from sealed_gitops.render.walk import IgnoreRules, Unit, walk

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
