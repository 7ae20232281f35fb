"""The repository's files as one build reads them: each read once and parsed once.

Why this module exists: a SOPS file was read and parsed up to four times per build: as a
manifest by the render stage (or, under kustomize, to find the original of each encrypted
document kustomize printed), again as a SOPS tree by the decryption stage, and once more for a
document a kustomize transformer changed (to compare it with the file as committed). With a few
hundred encrypted files that was most of a build's own time (issue 16). A build now keeps one
:class:`CommittedFiles`: the first reader reads and parses the file; the others get the same
bytes and documents, and the decryption stage gets the SOPS tree libyaml's one parse gave
(:func:`~sealed_gitops.render.loader.load_with_sops`).

Nothing is weakened by sharing: the bytes the MAC is verified over are the bytes the render
stage read (read once, so both stages see the same commit even if the file changed on disk
between them), the documents are the safe loader's under the build's limits, and a SOPS tree is
handed over at most once and dropped then (plaintext is never kept here: only ciphertext and
what the loader parsed). A build that is given no :class:`CommittedFiles` behaves as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealed_gitops.crypto.sops.tree import TreeBranch
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.loader import DEFAULT_LIMITS, Limits, Loaded, load_with_sops, read_limited

__all__ = ["CommittedFiles", "SopsInput"]


@dataclass(frozen=True)
class SopsInput:
    """What the decryption stage needs of one SOPS file: its bytes as this build read them,
    and its SOPS tree when the render stage's parse built it (None: parse ``data`` again)."""

    data: bytes
    tree: list[TreeBranch] | None


class CommittedFiles:
    """Per build: each file under ``root`` read and parsed at most once (not thread-safe: one
    build runs its render and decryption stages one after the other)."""

    def __init__(self, root: Path, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = root
        self.limits = limits
        self._bytes: dict[str, bytes] = {}
        self._documents: dict[str, list[tuple[int, Any]]] = {}
        self._trees: dict[str, list[TreeBranch]] = {}

    def read(self, rel: str, *, path: Path | None = None) -> bytes:
        """The file's bytes (never more than one byte past the size limit); ``path``: where
        the walk resolved ``rel`` to, when it did."""
        data = self._bytes.get(rel)
        if data is None:
            where = path if path is not None else self.root / rel
            data = self._bytes[rel] = read_limited(where, file=rel, limits=self.limits)
        return data

    def documents(
        self, rel: str, *, path: Path | None = None, cache: ContentCache | None = None
    ) -> list[tuple[int, Any]]:
        """The file's (index, document) pairs from the safe loader; raises its errors (an error
        is not remembered: the next reader parses again and gets the same error).

        ``path``: the file ``rel`` names, resolved (the walk's), else ``root / rel``; a
        ``.json`` one is JSON. ``cache`` (the operator's, across builds) gives the documents of
        bytes seen before; the SOPS tree is then not built here, and the decryption stage (or
        its own cache) has it.
        """
        parsed = self._documents.get(rel)
        if parsed is not None:
            return parsed
        data = self.read(rel, path=path)
        json_format = (path if path is not None else Path(rel)).suffix == ".json"
        if cache is None:
            parsed = self._load(rel, data, json_format=json_format)
        else:
            parsed = cache.get_or_compute(
                "parsed", rel, data, lambda: self._load(rel, data, json_format=json_format)
            )
        self._documents[rel] = parsed
        if not any(
            isinstance(v, Mapping) and isinstance(v.get("sops"), Mapping) for _, v in parsed
        ):
            # only SOPS files are read again (for their MAC): a ConfigMap's bytes need not stay
            self._bytes.pop(rel, None)
        return parsed

    def _load(self, rel: str, data: bytes, *, json_format: bool) -> list[tuple[int, Any]]:
        loaded: Loaded = load_with_sops(data, file=rel, json_format=json_format, limits=self.limits)
        if loaded.sops is not None:
            self._trees[rel] = loaded.sops
        return loaded.documents

    def sops_input(self, rel: str) -> SopsInput | None:
        """The bytes this build read of ``rel`` and its SOPS tree, handed over once (the
        decryption stage opens each file once); None when the build did not read the file as a
        SOPS file, or handed it over already (the caller reads it itself)."""
        data = self._bytes.pop(rel, None)
        if data is None:
            return None
        return SopsInput(data, self._trees.pop(rel, None))
