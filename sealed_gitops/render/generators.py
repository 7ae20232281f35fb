"""kustomize builds whose generators or patches read SOPS-encrypted files, as Flux builds them.

Why this module exists: Flux's kustomize-controller decrypts, before it builds, every file that a
``secretGenerator`` reads (``files:`` and ``envs:``) and every ``patches:`` file, when the file
holds the SOPS marker of its format, and then lets kustomize generate and patch over the
plaintext. That is what keeps generated names right: kustomize hashes the Secret's data into the
name suffix (``app-secret-7h2k9f...``), and Deployments that refer to the Secret get the same
suffix, so the hash must be over the plaintext. Without the decryption, the Secret would hold
ciphertext and ``sops_mac`` keys.

Here the same files are decrypted (MAC verified, unlike Flux) and kustomize builds a copy of the
tree in memory-backed storage (:mod:`sealed_gitops.render.staging`) with the plaintext in place of
each encrypted file; kustomize computes every hash suffix itself. Rules:

- a ``configMapGenerator`` that reads an encrypted file gets the plaintext only when a
  ``secretGenerator`` or a patch of the same build reads that file too (Flux's behaviour: it
  decrypts the file in place); otherwise the build is refused, as is any generator source that
  still holds a SOPS marker after the decryption: a generated object never carries ciphertext;
- a generated Secret is accepted as decrypted (not "a plain Secret in Git") only when every value
  it ends with came from an encrypted source: a key its generator read from a decrypted file, or
  a value an encrypted patch of the same build sets (a MAC-verified ciphertext in the patch file,
  matched by keyed digest). A generator ``literals:`` value counts only once such a patch has
  replaced it (Flux's patches layout: a literal base, encrypted patches over it). Generators whose
  file sources were all decrypted are given, in the copy only, an annotation whose value is a
  random nonce of this build (kustomize's hash covers only name, type and data, so the suffix
  does not change); :meth:`Staged.accept` checks and removes it. A manifest in Git cannot carry
  the nonce.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sealed_gitops.crypto.sops import Unwrapper
from sealed_gitops.errors import LimitExceeded, NoMatchingKey, RenderError, SealedGitopsError
from sealed_gitops.render import kustomize, relocate
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.kustomize import KustomizeScan
from sealed_gitops.render.kustomize_scan import is_inline
from sealed_gitops.render.loader import DEFAULT_LIMITS, load_bytes, read_limited
from sealed_gitops.render.sops_sources import (
    MARKERS,
    decrypt_source,
    format_for_path,
    has_marker,
    refuse_unbound,
)
from sealed_gitops.render.staging import staged_tree
from sealed_gitops.render.transformed import PatchRecord
from sealed_gitops.render.walk import resolve_inside

__all__ = ["ANNOTATION", "Source", "Staged", "build", "find_sources"]

#: the annotation (copy only) that marks a Secret generated from decrypted sources
ANNOTATION = "sealed-gitops.io/generated-from-sops"

_SECRET = "secretGenerator"  # noqa: S105 - a field name
_CONFIGMAP = "configMapGenerator"


@dataclass(frozen=True)
class Source:
    """One file a generator or a patch reads: resolved path, sops format, who reads it."""

    rel: str
    fmt: str
    role: str  # "secretGenerator", "configMapGenerator" or "patch"
    kfile: str
    #: (generator index in its kustomization, data key) for a generator source
    generator: int | None = None
    key: str | None = None
    env: bool = False


@dataclass
class Staged:
    """What the build decrypted, and how to recognise the Secrets it generated from it."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    #: annotation value -> the data keys that generator's encrypted sources produce
    keys: dict[str, set[str]] = field(default_factory=dict)
    #: per object and key path, what the encrypted patches set (a SOPS resource they patch)
    patches: PatchRecord = field(default_factory=PatchRecord)
    decrypted: dict[str, bytes] = field(default_factory=dict)

    def accept(self, data: Any) -> bool:
        """Strip the build's annotation from ``data``; True when it is a Secret every value of
        which came from decrypted sources (see the module docstring).

        A ``data`` key counts when its generator read it from an encrypted source, or when an
        encrypted patch of the build sets exactly this value there; a ``stringData`` key only in
        the second way. A ``data`` key that ``stringData`` shadows is never stored by the API
        server (Flux's patches layout replaces a generator literal that way) and is dropped.
        """
        if not isinstance(data, dict):
            return False
        meta = data.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if not isinstance(annotations, dict) or ANNOTATION not in annotations:
            return False
        mark = annotations[ANNOTATION]
        allowed = self.keys.get(mark) if isinstance(mark, str) else None
        if allowed is None:
            return False  # not ours: a manifest that names the annotation itself
        del annotations[ANNOTATION]
        if not annotations and isinstance(meta, dict):
            del meta["annotations"]
        values = data.get("data")
        strings = data.get("stringData")
        values = values if isinstance(values, dict) else {}
        strings = strings if isinstance(strings, dict) else {}
        if data.get("kind") != "Secret" or not (values or strings):
            return False
        if not all(self.patches.sets(("stringData", str(k)), v) for k, v in strings.items()):
            return False
        stored = {k: v for k, v in values.items() if k not in strings}
        if not all(
            str(k) in allowed or self.patches.sets(("data", str(k)), v) for k, v in stored.items()
        ):
            return False
        if len(stored) != len(values):
            if stored:
                data["data"] = stored
            else:
                del data["data"]
        return True


def _entries(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _generator_sources(spec: Mapping[str, Any], *, kfile: str, place: _Placer) -> Iterator[Source]:
    for role in (_SECRET, _CONFIGMAP):
        for index, gen in enumerate(_entries(spec.get(role))):
            if not isinstance(gen, Mapping):
                continue
            for entry in _entries(gen.get("files")):
                key, sep, path = str(entry).partition("=")
                path = path if sep else key
                # Flux picks the format by the key name (``key=file.txt`` is binary)
                data_key = key if sep else os.path.basename(path)
                yield Source(place(path), format_for_path(key), role, kfile, index, data_key)
            envs = [*_entries(gen.get("envs")), *([gen["env"]] if gen.get("env") else [])]
            for entry in envs:
                fmt = format_for_path(str(entry))
                fmt = "dotenv" if fmt == "binary" else fmt
                yield Source(place(str(entry)), fmt, role, kfile, index, None, env=True)


def _patch_sources(spec: Mapping[str, Any], *, kfile: str, place: _Placer) -> Iterator[Source]:
    paths = [p.get("path") for p in _entries(spec.get("patches")) if isinstance(p, Mapping)]
    paths += [p for p in _entries(spec.get("patchesStrategicMerge")) if isinstance(p, str)]
    for path in paths:
        if isinstance(path, str) and path.strip() and not is_inline(path):
            yield Source(place(path), format_for_path(path), "patch", kfile)


class _Placer:
    """A path as written in a kustomization -> its resolved path relative to the root."""

    def __init__(self, root: Path, directory: str) -> None:
        self.root, self.directory = root, directory

    def __call__(self, entry: str) -> str:
        target = resolve_inside(self.root, os.path.normpath(os.path.join(self.directory, entry)))
        return target.relative_to(self.root).as_posix()


def find_sources(root: Path, scanned: KustomizeScan) -> list[Source]:
    """Every generator source and patch file of the kustomizations ``scanned`` reached (the scan
    already refused references that are remote or leave the root)."""
    found: list[Source] = []
    for kfile, spec in scanned.specs.items():
        place = _Placer(root, os.path.dirname(kfile))
        found.extend(_generator_sources(spec, kfile=kfile, place=place))
        found.extend(_patch_sources(spec, kfile=kfile, place=place))
    return found


def _read(root: Path, rel: str) -> bytes:
    data = read_limited(root / rel, file=rel, limits=DEFAULT_LIMITS)
    if len(data) > DEFAULT_LIMITS.max_bytes:
        raise LimitExceeded(f"larger than {DEFAULT_LIMITS.max_bytes} bytes", file=rel)
    return data


def _decrypt_all(
    root: Path,
    sources: list[Source],
    *,
    unwrapper: Unwrapper | None,
    staged: Staged,
    binding: NamespaceBinding,
    cache: ContentCache | None = None,
) -> None:
    """Decrypt what Flux decrypts; refuse any source left holding a SOPS marker. ``cache``:
    plaintext of sources decrypted before (the isolate rebuild reuses the first build's)."""
    raw: dict[str, bytes] = {}
    for source in sources:
        if source.rel not in raw:
            raw[source.rel] = _read(root, source.rel)
    for source in sources:
        data = raw[source.rel]
        if source.role == _CONFIGMAP or source.rel in staged.decrypted:
            continue
        if has_marker(data, source.fmt):
            refuse_unbound(binding, file=source.rel)
            if unwrapper is None:
                raise NoMatchingKey(
                    "no SOPS keys were given to decrypt this generator source or patch",
                    file=source.rel,
                )
            plain = _decrypted(data, source, unwrapper=unwrapper, cache=cache)
            staged.decrypted[source.rel] = plain
            if source.role == "patch":
                _record_patch(staged.patches, data, plain, file=source.rel)
    for source in sources:
        data = raw[source.rel]
        if source.rel in staged.decrypted or not any(m in data for m in MARKERS.values()):
            continue
        what = "a ConfigMap" if source.role == _CONFIGMAP else "this build"
        raise RenderError(
            f"{what} would read this SOPS-encrypted file as ciphertext ({source.kfile}, "
            f"{source.role}): only secretGenerator sources and patches are decrypted, in the "
            "format their name gives (a files: entry by its key: key.env, key.yaml, ...)",
            file=source.rel,
        )


def _decrypted(
    data: bytes, source: Source, *, unwrapper: Unwrapper, cache: ContentCache | None
) -> bytes:
    def opened() -> bytes:
        return decrypt_source(data, fmt=source.fmt, unwrapper=unwrapper, file=source.rel)

    if cache is None:
        return opened()
    return cache.get_or_compute(f"source:{source.fmt}", source.rel, data, opened)


def _record_patch(record: PatchRecord, raw: bytes, plain: bytes, *, file: str) -> None:
    """Record what the patch file sets, per document, for the transformer check of a SOPS
    resource it patches (render/transformed.py); a patch we cannot pair records nothing."""
    try:
        pairs = list(zip(load_bytes(raw, file=file), load_bytes(plain, file=file), strict=True))
    except (SealedGitopsError, ValueError):
        return
    for (_, encrypted), (_, opened) in pairs:
        if isinstance(encrypted, Mapping) and isinstance(opened, Mapping):
            record.add(encrypted, opened)


def _env_keys(plain: bytes) -> set[str]:
    """The keys kustomize reads from a dotenv file (KEY=VALUE lines; comments, blanks out)."""
    keys = set()
    for line in plain.decode("utf-8", "replace").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            keys.add(text.partition("=")[0].strip())
    return keys


def _marked_kustomizations(
    root: Path, scanned: KustomizeScan, sources: list[Source], staged: Staged
) -> dict[str, dict[str, Any]]:
    """The kustomization files rewritten (copy only) with the nonce on each secretGenerator
    whose file sources were all decrypted. Its ``literals`` give no key of the mark: such a key
    is accepted only where an encrypted patch replaces its value."""
    by_generator: dict[tuple[str, int], list[Source]] = {}
    for source in sources:
        if source.role == _SECRET and source.generator is not None:
            by_generator.setdefault((source.kfile, source.generator), []).append(source)
    rewritten: dict[str, dict[str, Any]] = {}
    for kfile, scanned_spec in scanned.specs.items():
        if not _entries(scanned_spec.get(_SECRET)):
            continue
        spec = dict(scanned_spec)
        generators = list(spec[_SECRET])
        marked = False
        for index, gen in enumerate(generators):
            group = by_generator.get((kfile, index), [])
            if not isinstance(gen, Mapping) or not all(s.rel in staged.decrypted for s in group):
                continue
            if not group and not staged.patches.by_target:
                continue  # nothing encrypted could make it a decrypted Secret
            mark = f"{staged.nonce}-{len(staged.keys)}"
            keys: set[str] = set()
            for source in group:
                plain = staged.decrypted[source.rel]
                keys |= _env_keys(plain) if source.env else {source.key or ""}
            staged.keys[mark] = keys
            options = dict(gen.get("options") or {})
            options["annotations"] = {**dict(options.get("annotations") or {}), ANNOTATION: mark}
            generators[index] = {**gen, "options": options}
            marked = True
        if marked:
            spec[_SECRET] = generators
            rewritten[kfile] = spec
    return rewritten


def build(
    root: Path,
    directory: Path,
    *,
    rel: str,
    unwrapper: Unwrapper | None,
    kubectl: str | None = None,
    timeout: float = kustomize.DEFAULT_TIMEOUT,
    binding: NamespaceBinding = NamespaceBinding.NONE,
    blank: Collection[str] = (),
    cache: ContentCache | None = None,
) -> tuple[bytes, KustomizeScan, Staged | None]:
    """:func:`kustomize.build`, with encrypted generator sources and patches decrypted first.

    Returns kustomize's output, the scan of the checkout, and what was staged (None when the
    build reads no encrypted source: it then runs on the checkout as before). Under a Strict
    namespace binding an encrypted source is refused (:func:`refuse_unbound`). ``blank``: files
    (resolved, relative to ``root``) the copy holds empty, the isolate policy's rebuild without
    files that do not parse (render/isolate.py); the build is then always staged. ``cache``:
    the plaintext of sources a build of the same render decrypted already (not decrypted again).
    """
    root = root.resolve()
    scanned = kustomize.scan(root, directory)
    sources = [s for s in find_sources(root, scanned) if s.rel not in blank]
    staged = Staged()
    _decrypt_all(root, sources, unwrapper=unwrapper, staged=staged, binding=binding, cache=cache)
    marked = _marked_kustomizations(root, scanned, sources, staged)
    moved = relocate.plan(root, scanned, specs=marked)
    if not staged.decrypted and not blank and not moved.files:
        output, _ = kustomize.build(
            root, directory, rel=rel, kubectl=kubectl, timeout=timeout, scanned=scanned
        )
        return output, scanned, None
    replacements = {
        **dict.fromkeys(blank, b""),
        **staged.decrypted,
        **{k: yaml.safe_dump(v, sort_keys=False).encode("utf-8") for k, v in moved.specs.items()},
    }
    target = directory.resolve().relative_to(root)
    with staged_tree(
        root,
        scanned,
        replacements=replacements,
        placed=moved.files,
        plaintext=bool(staged.decrypted),
    ) as copy:
        output, _ = kustomize.build(
            copy, copy / target, rel=rel, kubectl=kubectl, timeout=timeout, scratch=copy
        )
    return output, scanned, staged
