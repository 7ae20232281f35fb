"""The two sides of the native-build tests: what the real ``kubectl kustomize`` prints, parsed as
the render stage parses it, and what render/kustomize_native.py builds for the same directory.

Compared as JSON text with sorted keys, so that a type kustomize's round trip changes (``1``
against ``1.0``, ``True`` against ``1``) counts as a difference, and in order (kustomize's legacy
output order, which the native build reproduces).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from sealed_gitops.render import kustomize_native
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.kustomize_scan import OUTPUT_LIMITS
from sealed_gitops.render.loader import load_bytes

__all__ = ["as_text", "kustomize_objects", "native_objects"]


def kustomize_objects(kubectl: str, directory: Path) -> list[Any] | None:
    """The objects kustomize builds from ``directory``, in its order; None when it fails."""
    done = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", str(directory)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return None
    return [data for _, data in load_bytes(done.stdout, file="out", limits=OUTPUT_LIMITS)]


def native_objects(root: Path, directory: Path) -> list[Any] | None:
    """What the native build gives for ``directory``, in its order; None: not eligible."""
    root = root.resolve()
    built = kustomize_native.build(root, directory.resolve(), files=CommittedFiles(root))
    return None if built is None else [doc.data for doc in built]


def as_text(objects: list[Any]) -> list[str]:
    return [json.dumps(obj, sort_keys=True) for obj in objects]
