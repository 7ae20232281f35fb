"""Benchmark: ``sealed-gitops audit --output json`` over 2,000 commits and 500 encrypted files.

Why: the audit must stay usable on a real GitOps repository's history (issue 8 sets the goal at
10 s or less for this size). The history is generated with the SOPS engine (so ciphertext stays
stable for untouched values, as with real edits) and written with ``git fast-import`` in one
stream, which takes seconds instead of the minutes 2,000 ``git commit`` runs would take.

The mix of commits: mostly one value changed in one file, plus renames (every 50th commit),
recipient re-wraps (every 40th) and new values (every 25th), by ten authors.

Both sides are timed ``--runs`` times (at least 5, taking turns) as wall and CPU time (user + sys,
children included), printed as the median and spread (benchmarks/_timing.py): the audit (one
``sealed-gitops audit --output json`` process) and, as the yardstick of the same run,
``git log -p`` over the same history, the reading of every change that any audit must do. The
last line is the same-run CPU-time ratio audit / ``git log -p``.

Run: ``.venv/bin/python benchmarks/audit.py [--commits 2000] [--files 500] [--keep DIR]
[--decrypt] [--runs R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient
from sealed_gitops.crypto.sops import encrypt_bytes, set_value, update_keys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import MIN_RUNS, alternate, print_ratio, repeat

GOAL_SECONDS = 10.0


def _secret(index: int, rng: random.Random) -> bytes:
    values = "".join(f"  key{k}: value-{index}-{k}-{rng.random()}\n" for k in range(3))
    return (
        "apiVersion: v1\nkind: Secret\nmetadata:\n"
        f"  name: secret-{index}\n  namespace: team-{index % 7}\nstringData:\n{values}"
    ).encode()


class FastImport:
    """Writes a git fast-import stream: one blob per file version, one commit per step."""

    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            ["git", "fast-import", "--quiet"], cwd=repo, stdin=subprocess.PIPE
        )
        self.mark = 0
        self.when = 1_767_225_600  # 2026-01-01T00:00:00Z

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def blob(self, data: bytes) -> int:
        self.mark += 1
        self._write(b"blob\nmark :%d\ndata %d\n" % (self.mark, len(data)) + data + b"\n")
        return self.mark

    def commit(self, author: str, message: str, ops: list[bytes]) -> None:
        self.when += 600
        who = f"{author} <{author.lower()}@example.invalid> {self.when} +0000".encode()
        msg = message.encode()
        self._write(
            b"commit refs/heads/main\nauthor "
            + who
            + b"\ncommitter "
            + who
            + b"\ndata %d\n" % len(msg)
            + msg
            + b"\n"
            + b"".join(op + b"\n" for op in ops)
            + b"\n"
        )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise SystemExit("git fast-import failed")


def generate(repo: Path, *, commits: int, files: int, seed: int = 8) -> str:
    """Write the history into ``repo``; return the age identities (for ``--decrypt``)."""
    rng = random.Random(seed)
    identities = [pyrage.x25519.Identity.generate() for _ in range(2)]
    unwrapper = AgeIdentities.from_text("\n".join(str(i) for i in identities))
    recipients = [AgeRecipient(str(i.to_public())) for i in identities]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = FastImport(repo)
    names = [f"apps/team-{i % 20}/secret-{i}.sops.yaml" for i in range(files)]
    contents = {
        name: encrypt_bytes(_secret(i, rng), key_groups=[recipients[:1]], file=name)
        for i, name in enumerate(names)
    }
    stream.commit(
        "Admin",
        "initial secrets",
        [
            b"M 100644 :%d %s" % (stream.blob(data), name.encode())
            for name, data in contents.items()
        ],
    )
    authors = [f"Author{n}" for n in range(10)]
    for step in range(1, commits):
        index = rng.randrange(files)
        name = names[index]
        data = contents[name]
        if step % 50 == 0:
            new_name = name.replace(".sops.yaml", f"-r{step}.sops.yaml")
            del contents[name]
            contents[new_name] = data
            names[index] = new_name
            stream.commit(
                rng.choice(authors), "rename", [b"R %s %s" % (name.encode(), new_name.encode())]
            )
            continue
        if step % 40 == 0:
            groups = [recipients[: 1 + (step // 40) % 2]]
            data = update_keys(data, unwrapper=unwrapper, key_groups=groups, file=name)
        else:
            key = f"key{rng.randrange(3)}" if step % 25 else f"extra{step}"
            value = json.dumps(f"v{step}-{rng.random()}")
            data = set_value(
                data, f'["stringData"]["{key}"]', value, unwrapper=unwrapper, file=name
            )
        contents[name] = data
        stream.commit(
            rng.choice(authors),
            f"change {step}",
            [b"M 100644 :%d %s" % (stream.blob(data), name.encode())],
        )
    stream.close()
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
    return "".join(f"{i}\n" for i in identities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="Generate into this directory and keep it.")
    parser.add_argument("--decrypt", action="store_true", help="Time audit --decrypt as well.")
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"repetitions of each side (>= {MIN_RUNS})"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-audit-bench-") as tmp:
        repo = args.keep or Path(tmp) / "repo"
        started = time.perf_counter()
        identities = generate(repo, commits=args.commits, files=args.files)
        generated = time.perf_counter() - started
        key_file = Path(tmp) / "keys.txt"
        key_file.write_text(identities)
        env = {
            **os.environ,
            "SOPS_DISABLE_VERSION_CHECK": "true",
            "SOPS_AGE_KEY_FILE": str(key_file),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed for users
        command = [sys.executable, "-m", "sealed_gitops", "audit", str(repo), "--output", "json"]
        outputs: list[bytes] = []

        def audit() -> None:
            proc = subprocess.run(command, capture_output=True, check=True, env=env)
            outputs.append(proc.stdout)

        def git_log() -> None:
            subprocess.run(
                ["git", "log", "-p", "--no-color", "main"],
                cwd=repo,
                stdout=subprocess.DEVNULL,
                check=True,
            )

        audit()  # untimed: bytecode and page cache filled
        audited, logged = alternate(audit, git_log, runs=args.runs)
        decrypted = None
        if args.decrypt:

            def audit_decrypt() -> None:
                subprocess.run([*command, "--decrypt"], capture_output=True, check=True, env=env)

            decrypted = repeat(audit_decrypt, runs=args.runs)
    rows = json.loads(outputs[-1])
    print(
        f"history: {args.commits} commits over {args.files} files, generated in {generated:.1f} s"
    )
    print("wall and CPU time (user+sys, children included), medians:")
    met = "met" if audited.wall <= GOAL_SECONDS else "MISSED"
    print(
        f"audit --output json, {len(rows)} rows (goal wall <= {GOAL_SECONDS:.0f} s: {met}): "
        f"{audited.describe()}"
    )
    if decrypted is not None:
        print(f"audit --output json --decrypt: {decrypted.describe()}")
    print(f"git log -p over the same history: {logged.describe()}")
    print_ratio("audit / git log -p", baseline=audited, ours=logged)


if __name__ == "__main__":
    main()
