"""What benchmarks/peers.py measures with, kept apart from what it runs.

Why a module of its own: the four systems (our operator twice, Flux, Bitnami's controller) are
measured the same way, and the way is the point of a fair comparison:

- CPU seconds are the kernel's count for the controller processes (``/proc/PID/stat``: user +
  system, plus the children they waited for, since our operator runs ``git`` as a child while
  source-controller fetches in process), read before and after a window;
- peak RSS is the kernel's high-water mark (``VmHWM`` in ``/proc/PID/status``) at the end of a run;
- API writes are the lines of the API server's audit log (one per write request, see
  ``ControlPlane(audit_log=...)``) for the system's namespace within a window;
- objects are seen by listing metadata only (``PartialObjectMetadataList``), so polling 2,000
  objects costs the shared machine little.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import ssl
import statistics
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealed_gitops.testing.control_plane import ControlPlane

__all__ = ["Api", "AuditLog", "Meter", "format_table", "ratios_line", "wait_until"]

_TICKS = os.sysconf("SC_CLK_TCK")
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
#: How often a wait looks again: well below the seconds measured, above a busy loop.
POLL = 0.2


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Return once ``check()`` is true; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(POLL)


class Api:
    """JSON requests to the control plane as its admin (the benchmark's own, not measured)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.url = plane.url
        self._context = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
        self._context.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """The answer's JSON, or None for 404; any other error raises RuntimeError."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (https to loopback)
            f"{self.url}{path}", data=data, method=method,
            headers={"Content-Type": content_type, "Accept": accept},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60, context=self._context) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def create(self, path: str, body: dict[str, Any]) -> None:
        self.call("POST", path, body)

    def annotate(self, path: str, key: str) -> str:
        """Set annotation ``key`` to a fresh timestamp (a reconcile request); the value."""
        value = time.strftime("%Y-%m-%dT%H:%M:%S") + f".{time.time_ns() % 10**9:09d}Z"
        self.call("PATCH", path, {"metadata": {"annotations": {key: value}}},
                  content_type="application/merge-patch+json")  # fmt: skip
        return value

    def names(self, path: str) -> set[str]:
        """Names of the objects listed at ``path`` (metadata only)."""
        answer = self.call("GET", path, accept=_METADATA_LIST) or {}
        return {item["metadata"]["name"] for item in answer.get("items") or []}

    def secret_holds(self, namespace: str, name: str, key: str, value: bytes) -> bool:
        """Whether Secret ``name`` holds ``value`` under ``key`` (compared, never shown)."""
        secret = self.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}") or {}
        raw = (secret.get("data") or {}).get(key)
        return raw is not None and hmac.compare_digest(base64.b64decode(raw), value)

    def namespace(self, name: str) -> None:
        self.create("/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name}})  # fmt: skip

    def delete_namespace(self, name: str, *, timeout: float = 600) -> None:
        """Delete it and wait until it is gone, so the next system starts on a quiet server."""
        self.call("DELETE", f"/api/v1/namespaces/{name}")
        wait_until(lambda: self.call("GET", f"/api/v1/namespaces/{name}") is None,
                   timeout=timeout, what=f"namespace {name} deleted")  # fmt: skip


@dataclass(frozen=True)
class Meter:
    """CPU and peak RSS of a set of processes, from /proc (Linux)."""

    pids: tuple[int, ...]

    def cpu(self) -> float:
        """User + system seconds so far, the waited-for children included."""
        total = 0
        for pid in self.pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return total / _TICKS

    def peak_rss_mb(self) -> float:
        """The sum of the processes' resident-set high-water marks, in MiB."""
        total_kb = 0
        for pid in self.pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        return total_kb / 1024


class AuditLog:
    """The API server's audit log: count the write requests into one namespace after a mark."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def writes(self, since: int, namespace: str) -> tuple[int, int, Counter[str]]:
        """``(write requests, of which dry-run, count by "verb resource")`` logged into
        ``namespace`` after ``since``."""
        with self.path.open("rb") as log:
            log.seek(since)
            data = log.read()
        writes = dry = 0
        kinds: Counter[str] = Counter()
        for line in data.splitlines():
            if not line.endswith(b"}"):
                continue  # a line still being written
            event = json.loads(line)
            if (event.get("objectRef") or {}).get("namespace") != namespace:
                continue
            writes += 1
            is_dry = "dryRun=" in event.get("requestURI", "")
            dry += is_dry
            ref = event["objectRef"]
            sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
            kinds[
                f"{event['verb']}{' (dry-run)' if is_dry else ''} {ref.get('resource')}{sub}"
            ] += 1
        return writes, dry, kinds


#: figure -> (unit, what it is) in the order of the table.
FIGURES: dict[str, tuple[str, str]] = {
    "first_wall": ("s", "SOPS: commit to all objects present (first reconcile)"),
    "first_cpu": ("s", "SOPS: CPU of that first reconcile"),
    "change_wall": ("s", "SOPS: commit to the changed Secret (one file changed)"),
    "change_cpu": ("s", "SOPS: CPU of that reconcile"),
    "noop_wall": ("s", "SOPS: no-op reconcile, request to handled"),
    "noop_cpu": ("s", "SOPS: CPU of the no-op reconcile"),
    "noop_writes": ("req", "SOPS: API writes of the no-op (its request included)"),
    "sops_rss": ("MiB", "SOPS: peak RSS of the controller process(es)"),
    "sealed_wall": ("s", "SealedSecrets: commit/apply to all Secrets present"),
    "sealed_cpu": ("s", "SealedSecrets: CPU until all are unsealed and reported"),
    "sealed_rss": ("MiB", "SealedSecrets: peak RSS of the controller process"),
}
#: The smallest step of a figure (CPU ticks, one request): a zero of ours is divided as this.
_RESOLUTION = {"req": 1.0, "s": 1 / _TICKS, "MiB": 1.0}


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ratio(figure: str, ours: float, theirs: float) -> float:
    """The peer's value over ours (above 1: ours is better); a zero of ours counts as one step."""
    return theirs / max(ours, _RESOLUTION[FIGURES[figure][0]])


def format_table(
    ours: dict[str, list[float]], theirs: dict[str, list[float]], *, notes: dict[str, str]
) -> str:
    """The table: median of each side, ours/theirs and theirs/ours, per figure."""
    rows = [
        ("figure", "unit", "ours", "theirs", "ours/theirs", "theirs/ours", "runs (ours | theirs)")
    ]
    for figure, (unit, _) in FIGURES.items():
        a, b = _median(ours[figure]), _median(theirs[figure])
        runs = (
            " ".join(f"{v:.2f}" for v in ours[figure])
            + " | "
            + " ".join(f"{v:.2f}" for v in theirs[figure])
        )
        rows.append((figure, unit, f"{a:.2f}", f"{b:.2f}", f"{a / b:.2f}" if b else "-",
                     f"{ratio(figure, a, b):.2f}x", runs))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += ["", *(f"{figure}: {FIGURES[figure][1]}" for figure in FIGURES)]
    lines += [f"note: {text}" for text in notes.values()]
    return "\n".join(lines)


def ratios_line(ours: dict[str, list[float]], theirs: dict[str, list[float]]) -> str:
    pairs = (
        f"{figure}={ratio(figure, _median(ours[figure]), _median(theirs[figure])):.2f}x"
        for figure in FIGURES
    )
    return "peers: " + " ".join(pairs)
