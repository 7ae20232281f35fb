"""``render()``: from a path in a checked-out repository to the list of documents it declares.

Why this module exists: it is the one entry point the pipeline (and ``sealed-gitops build``) calls
for the render phase. It decides walk-or-kustomize, loads every file through the safe loader,
wraps and classifies each document, restores SOPS documents that went through kustomize to their
original form (see below), and refuses the same object declared twice. It also implements the
collecting half of the failure policy: with a ``failures`` list, a bad file or document is recorded
there and left out instead of failing the whole render (the "isolate" policy); without one, the
first failure raises ("atomic").

SOPS documents that went through kustomize are matched back to their committed files by
:mod:`sealed_gitops.render.restore`; a kustomization kustomize would print unchanged is built
without it by :mod:`sealed_gitops.render.kustomize_native`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sealed_gitops.crypto.sops import Unwrapper
from sealed_gitops.errors import RenderError, SealedGitopsError
from sealed_gitops.plan.ids import ObjectId
from sealed_gitops.render import generators, isolate, kustomize, kustomize_native
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.document import (
    DocKind,
    Document,
    Failure,
    make_document,
    mark_decrypted,
)
from sealed_gitops.render.loader import DEFAULT_LIMITS, Limits, load_bytes
from sealed_gitops.render.restore import restore, sops_originals
from sealed_gitops.render.sops_sources import open_secret_document
from sealed_gitops.render.walk import Unit, walk

__all__ = ["render"]


class _Collector:
    """Applies the failure policy: raise at once, or record and carry on."""

    def __init__(self, failures: list[Failure] | None) -> None:
        self.failures = failures

    def fail(
        self, exc: SealedGitopsError, *, file: str, index: int | None, obj: str | None = None
    ) -> None:
        if self.failures is None:
            raise exc
        reason = exc.reason if exc.file else str(exc)
        self.failures.append(Failure(exc.file or file, index, obj, reason, exc))


def _index_of(exc: SealedGitopsError) -> int | None:
    loc = exc.location or ""
    if loc.startswith("document "):
        try:
            return int(loc.removeprefix("document "))
        except ValueError:
            return None
    return None


def _load_unit_file(
    unit: Unit,
    files: CommittedFiles,
    out: _Collector,
    cache: ContentCache | None = None,
    *,
    sops_keys: Unwrapper | None = None,
    sops_binding: NamespaceBinding = NamespaceBinding.NONE,
) -> list[Document]:
    docs: list[Document] = []
    try:
        parsed = files.documents(unit.rel, path=unit.path, cache=cache)
    except SealedGitopsError as exc:
        out.fail(exc, file=unit.rel, index=_index_of(exc))
        return docs
    for index, data in parsed:
        try:
            doc = make_document(data, file=unit.rel, index=index)
            docs.append(open_secret_document(doc, unwrapper=sops_keys, binding=sops_binding))
        except SealedGitopsError as exc:
            out.fail(exc, file=unit.rel, index=index, obj=object_name(data))
    return docs


def _without_broken_files(
    root: Path,
    unit: Unit,
    failed: SealedGitopsError,
    *,
    limits: Limits,
    kubectl: str | None,
    timeout: float,
    out: _Collector,
    sops_keys: Unwrapper | None = None,
    sops_binding: NamespaceBinding = NamespaceBinding.NONE,
    sources: ContentCache | None = None,
) -> tuple[bytes, kustomize.KustomizeScan, generators.Staged | None] | None:
    """After a failed kustomize build: name the files that do not parse (atomic: raise the
    first); under isolate, build again without them (render/isolate.py). None: nothing built."""
    broken = isolate.unparsable(root, unit, limits=limits)
    for rel, exc in broken:
        out.fail(exc, file=rel, index=_index_of(exc))
    if not broken:
        out.fail(failed, file=unit.rel, index=None)
        return None
    try:
        return isolate.build_leaving_out(
            root,
            unit,
            broken,
            kubectl=kubectl,
            timeout=timeout,
            unwrapper=sops_keys,
            binding=sops_binding,
            cache=sources,
        )
    except SealedGitopsError as exc:
        out.fail(exc, file=unit.rel, index=None)
        return None


def _build_unit(
    root: Path,
    unit: Unit,
    *,
    limits: Limits,
    kubectl: str | None,
    timeout: float,
    out: _Collector,
    sops_keys: Unwrapper | None = None,
    sops_binding: NamespaceBinding = NamespaceBinding.NONE,
    files: CommittedFiles,
) -> list[Document]:
    docs: list[Document] = []
    # the plaintext of generator sources and patches, for this unit's builds only: an isolate
    # rebuild reuses what the first build decrypted instead of decrypting it again
    sources = ContentCache()
    try:
        # encrypted generator sources and patches are decrypted first (render/generators.py)
        output, scanned, staged = generators.build(
            root,
            unit.path,
            rel=unit.rel,
            unwrapper=sops_keys,
            kubectl=kubectl,
            timeout=timeout,
            binding=sops_binding,
            cache=sources,
        )
        parsed = load_bytes(output, file=unit.rel, limits=kustomize.OUTPUT_LIMITS)
    except SealedGitopsError as exc:
        rebuilt = _without_broken_files(
            root,
            unit,
            exc,
            limits=limits,
            kubectl=kubectl,
            timeout=timeout,
            out=out,
            sops_keys=sops_keys,
            sops_binding=sops_binding,
            sources=sources,
        )
        if rebuilt is None:
            return docs
        output, scanned, staged = rebuilt
        try:
            parsed = load_bytes(output, file=unit.rel, limits=kustomize.OUTPUT_LIMITS)
        except SealedGitopsError as again:
            out.fail(again, file=unit.rel, index=None)
            return docs
    originals = (
        sops_originals(files, scanned.manifests)
        if any(isinstance(d, Mapping) and "sops" in d for _, d in parsed)
        else {}
    )
    for index, data in parsed:
        try:
            generated = staged is not None and staged.accept(data)
            doc = make_document(data, file=unit.rel, index=index, via=unit.rel)
            if generated:
                doc = mark_decrypted(doc)
            doc = open_secret_document(doc, unwrapper=sops_keys, binding=sops_binding)
            if doc.kind is DocKind.SOPS:
                doc = restore(doc, originals, via=unit.rel, staged=staged)
            docs.append(doc)
        except SealedGitopsError as exc:
            out.fail(
                exc, file=exc.file or unit.rel, index=_index_of(exc) or index, obj=object_name(data)
            )
    return docs


def _native_unit(
    unit: Unit,
    built: list[kustomize_native.NativeDocument],
    out: _Collector,
    *,
    sops_keys: Unwrapper | None = None,
    sops_binding: NamespaceBinding = NamespaceBinding.NONE,
) -> list[Document]:
    """The documents of a kustomization built without kustomize (render/kustomize_native.py),
    named as the kustomize path names them: a SOPS document by its committed file and index
    (it is the committed document, or a copy whose namespace the kustomization set, which the
    decryption stage checks as any transformed one), any other by the kustomization and its
    place in the output."""
    docs: list[Document] = []
    for position, native in enumerate(built):
        try:
            doc = make_document(native.data, file=unit.rel, index=position, via=unit.rel)
            if doc.kind is DocKind.SOPS:
                # known here, so no MAC matching (restore) is needed
                doc = Document(
                    native.file,
                    native.index,
                    native.data,
                    DocKind.SOPS,
                    doc.id,
                    unit.rel,
                    transformed=native.renamespaced,
                )
            else:
                doc = open_secret_document(doc, unwrapper=sops_keys, binding=sops_binding)
            docs.append(doc)
        except SealedGitopsError as exc:
            out.fail(
                exc,
                file=exc.file or unit.rel,
                index=_index_of(exc) or position,
                obj=object_name(native.data),
            )
    return docs


def _refuse_duplicates(docs: list[Document], out: _Collector) -> list[Document]:
    by_id: dict[ObjectId, list[Document]] = {}
    for doc in docs:
        if doc.id is not None:
            by_id.setdefault(doc.id, []).append(doc)
    bad = {oid: group for oid, group in by_id.items() if len(group) > 1}
    if not bad:
        return docs
    for oid, group in sorted(bad.items()):
        places = " and ".join(d.location for d in group)
        for doc in group:
            exc = RenderError(
                f"{oid.describe()} is declared more than once: {places}",
                file=doc.file,
                location=f"document {doc.index}",
            )
            out.fail(exc, file=doc.file, index=doc.index, obj=oid.describe())
    return [d for d in docs if d.id not in bad]


def render(
    root: Path,
    path: str = ".",
    *,
    failures: list[Failure] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    kubectl: str | None = None,
    timeout: float = kustomize.DEFAULT_TIMEOUT,
    cache: ContentCache | None = None,
    sops_keys: Unwrapper | None = None,
    sops_binding: NamespaceBinding = NamespaceBinding.NONE,
    files: CommittedFiles | None = None,
) -> list[Document]:
    """Every document declared under ``path`` of the repository checked out at ``root``.

    - ``path`` is relative to ``root``; a file, a kustomization directory, or a directory to walk
      (subdirectories with a kustomization are built with kustomize).
    - ``failures``: pass a list to collect per-file and per-document failures there and leave
      those documents out (the isolate policy); leave it None to raise on the first (atomic).
      Errors that concern the path itself (it leaves the root, does not exist) always raise.
    - ``kubectl``, ``timeout``: the binary and the per-build time limit for kustomize.
    - ``cache``: parsed files by content, reused across builds (kustomize output is not cached).
    - ``sops_keys``: decrypt SOPS-encrypted generator sources and patches before kustomize runs,
      and Secret ``data`` values that are SOPS documents (render/generators.py); without them
      such a build fails with NoMatchingKey. ``sops_binding``: the KeyRing's namespace binding;
      Strict refuses those files (they cannot name their namespace under their MAC).
    - ``files``: the build's :class:`CommittedFiles` (rooted at ``root``, with ``limits``), so
      the decryption stage gets the bytes and SOPS trees read here instead of parsing again.

    The result is in a deterministic order: units (files and kustomizations) by path, documents
    of a file by index, those of a kustomization in kustomize's output order. A SOPS document
    whose identity is encrypted has ``id`` None and is not checked for duplicates here.
    """
    out = _Collector(failures)
    root = root.resolve()
    if files is None:
        files = CommittedFiles(root, limits=limits)
    docs: list[Document] = []
    for unit in walk(root, path):
        built = (
            kustomize_native.build(root, unit.path, files=files, cache=cache)
            if unit.kustomize
            else None
        )
        if built is not None:
            # a kustomization kustomize would print unchanged (or only re-namespaced)
            docs.extend(
                _native_unit(unit, built, out, sops_keys=sops_keys, sops_binding=sops_binding)
            )
        elif unit.kustomize:
            docs.extend(
                _build_unit(
                    root,
                    unit,
                    limits=limits,
                    kubectl=kubectl,
                    timeout=timeout,
                    out=out,
                    sops_keys=sops_keys,
                    sops_binding=sops_binding,
                    files=files,
                )
            )
        else:
            docs.extend(
                _load_unit_file(
                    unit, files, out, cache, sops_keys=sops_keys, sops_binding=sops_binding
                )
            )
    return _refuse_duplicates(docs, out)


def object_name(data: Any) -> str | None:
    """``Kind namespace/name`` of a parsed document when it can be told, for failure records."""
    try:
        return ObjectId.of(data).describe() if isinstance(data, Mapping) else None
    except SealedGitopsError:
        return None
