"""A copy of one kustomize build in memory-backed storage, with decrypted files in it.

Why this module exists: kustomize must read the *plaintext* of a SOPS-encrypted generator source
or patch, or the Secret it generates holds ciphertext and its name gets a hash suffix that no
other object refers to (Flux decrypts those files in its working copy before building). The
plaintext must never reach persistent disk or the git cache, and kustomize reads only files. So
the files one build reads (what :func:`~sealed_gitops.render.kustomize.scan` found: its
kustomizations, resources and every referenced file) are copied into a fresh directory under a
memory-backed file system (``/dev/shm``, tmpfs), mode 0700 and files 0600, with each decrypted
file written in place of its ciphertext; kustomize builds that copy, and the directory is removed
as soon as the build returns, whatever happened. kustomize itself then computes the hash suffixes,
over the same bytes it would see in a plaintext checkout.

There is no fallback to a disk directory: where no memory-backed file system is mounted the build
is refused, naming what is missing. Symlinks inside the repository are reproduced as symlinks, so
kustomize's load restrictor judges the copy exactly as it would judge the checkout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from sealed_gitops.errors import RenderError
from sealed_gitops.render.kustomize import OUTPUT_LIMITS, KustomizeScan
from sealed_gitops.render.loader import read_limited

__all__ = ["MEMORY_DIR", "MEMORY_FILESYSTEMS", "memory_backed", "staged_tree"]

#: where staging directories are made (a tmpfs on every Linux with POSIX shared memory)
MEMORY_DIR = Path("/dev/shm")  # noqa: S108 - a memory-backed mount, checked below, never disk
#: file system types that keep their files in memory only
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def _mount_type(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (the longest matching mount point)."""
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = str(path.resolve())
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def memory_backed(path: Path) -> bool:
    """Whether files under ``path`` live in memory only (tmpfs or ramfs)."""
    return path.is_dir() and _mount_type(path) in MEMORY_FILESYSTEMS


def _copy_into(stage: Path, rel: str, data: bytes) -> None:
    target = stage / rel
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _link_into(stage: Path, written: str, resolved: str) -> None:
    """``written`` (a path through a symlink) points at ``resolved`` in the copy too."""
    link = stage / written
    if link.exists() or link.is_symlink():
        return
    link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(stage / resolved, link.parent))


@contextlib.contextmanager
def staged_tree(
    root: Path,
    scanned: KustomizeScan,
    *,
    replacements: Mapping[str, bytes],
    placed: Mapping[str, str] | None = None,
    plaintext: bool = True,
    memory_dir: Path | None = None,
) -> Iterator[Path]:
    """A memory-backed copy of what ``scanned`` reads under ``root``, removed on exit.

    ``replacements`` maps a path relative to ``root`` (resolved) to the bytes the copy holds
    instead of the file's own (the decrypted plaintext, or a rewritten kustomization).
    ``placed``: more files of the copy, each a copy of a file of the build (its replacement if
    it has one): render/relocate.py. Raises :class:`RenderError` when ``memory_dir`` (default
    :data:`MEMORY_DIR`) is not memory-backed, unless the copy holds no ``plaintext`` (files
    moved for the load restrictor only): that copy may go to the temporary directory.
    """
    base = memory_dir or MEMORY_DIR
    if not plaintext and not memory_backed(base):
        base = Path(tempfile.gettempdir())
    elif not memory_backed(base):
        raise RenderError(
            f"decrypting generator sources or patches needs a memory-backed directory ({base} "
            "on tmpfs) so that no plaintext is written to disk; none is mounted here"
        )
    stage = Path(tempfile.mkdtemp(prefix="sg-build-", dir=base))  # mode 0700
    try:
        resolved = {rel for rel in scanned.kustomizations}
        resolved.update(rel for _, rel in scanned.references)
        for rel in sorted(resolved):
            source = root / rel
            if source.is_dir():
                (stage / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
            data = replacements.get(rel)
            if data is None:
                data = read_limited(source, file=rel, limits=OUTPUT_LIMITS)
            _copy_into(stage, rel, data)
        for copy_rel, origin in sorted((placed or {}).items()):
            data = replacements.get(origin)
            if data is None:
                data = read_limited(root / origin, file=origin, limits=OUTPUT_LIMITS)
            _copy_into(stage, copy_rel, data)
        for written, rel in scanned.references:
            if os.path.normpath(written) != rel:
                _link_into(stage, os.path.normpath(written), rel)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
