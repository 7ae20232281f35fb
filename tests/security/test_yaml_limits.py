"""Finding 7 of issue 11: memory from YAML aliases under the node limit.

The attack: a committer adds a ~1.4 MB ConfigMap whose 100 KB anchor is referenced 100,000 times.
It has only ~200,000 nodes, well under the node limit, but its values expand to 10 GB the moment
anything serialises them (``json.dumps`` for a digest, the YAML/JSON printer of ``build``, the
request body sent to the API server). Every loader that reads repository bytes must count the
*expanded* bytes and refuse the file, naming it, long before that.

The end-to-end test runs ``sealed-gitops build`` in a child process with its address space capped
(RLIMIT_AS) and a timeout, so that on a vulnerable build it dies of MemoryError instead of taking
a shared machine down with it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from sealed_gitops.crypto.sops.document import load_tree
from sealed_gitops.errors import LimitExceeded
from sealed_gitops.render.loader import DEFAULT_LIMITS, load_bytes

#: the child's address space: plenty for a normal build, far below what the bomb expands to
MEMORY_CAP = 1536 * 1024 * 1024
ANCHOR_BYTES = 100_000


def alias_bomb(aliases: int = 100_000, *, name: str = "bomb") -> bytes:
    """A ConfigMap with one 100 KB anchor and ``aliases`` keys that each alias it (~1.4 MB)."""
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        f"  name: {name}",
        "data:",
        f"  anchor: &a {'x' * ANCHOR_BYTES}",
    ]
    lines += [f"  key{i}: *a" for i in range(aliases)]
    return ("\n".join(lines) + "\n").encode()


def _cap_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_alias_bomb_is_under_the_old_limits() -> None:
    """The premise: the file is small and has far fewer nodes than the node limit allows."""
    data = alias_bomb()
    assert 1_300_000 < len(data) < DEFAULT_LIMITS.max_bytes
    assert DEFAULT_LIMITS.max_nodes > 2 * 100_000 + 10


def test_build_refuses_alias_bomb_naming_the_file(tmp_path: Path) -> None:
    """A commit in (the bomb), the hostile behaviour observed: before the fix the build's
    process died of MemoryError under a 1.5 GB cap; now it refuses the file, naming it."""
    repo = tmp_path / "repo"
    (repo / "apps").mkdir(parents=True)
    (repo / "apps" / "bomb.yaml").write_bytes(alias_bomb())
    (repo / "apps" / "fine.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  k: v\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "VAULT_"))}
    env["HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "build", str(repo)],
        capture_output=True,
        timeout=90,
        env=env,
        preexec_fn=_cap_memory,
        check=False,
    )
    stderr = proc.stderr.decode(errors="replace")
    assert "MemoryError" not in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert proc.returncode == 1, stderr[-2000:]
    assert "apps/bomb.yaml" in stderr
    assert "expand" in stderr
    assert b"x" * 1000 not in proc.stdout + proc.stderr


def test_loader_refuses_expanded_bytes_over_the_limit() -> None:
    with pytest.raises(LimitExceeded) as caught:
        load_bytes(alias_bomb(), file="apps/bomb.yaml")
    assert caught.value.file == "apps/bomb.yaml"
    assert "expand" in caught.value.reason


def test_sops_loader_refuses_expanded_bytes_over_the_limit() -> None:
    """The SOPS reader counts revisited nodes (10,000 allowed) but not their bytes: 9,000
    aliases of 100 KB are 900 MB of values to MAC, decrypt and print."""
    data = alias_bomb(9_000) + b"sops:\n  version: 3.9.0\n"
    with pytest.raises(LimitExceeded) as caught:
        load_tree(data, fmt="yaml", file="secrets/bomb.yaml")
    assert caught.value.file == "secrets/bomb.yaml"
    assert "expand" in caught.value.reason


def test_merge_key_expansion_counts_bytes() -> None:
    """Merge keys (``<<: *a``) copy a whole mapping: their bytes count like any alias."""
    base = "\n".join(f"  k{i}: {'y' * 1000}" for i in range(100))
    users = "\n".join(f"u{i}:\n  <<: *base\n  own: {i}" for i in range(300))
    text = f"base: &base\n{base}\n{users}\n".encode()
    with pytest.raises(LimitExceeded, match="expand"):
        load_bytes(text, file="merge.yaml", limits=type(DEFAULT_LIMITS)(max_expanded_bytes=10**7))


def test_ordinary_aliases_still_load() -> None:
    """Anchors used as people use them (a shared block reused a few dozen times) still load,
    and the SOPS reader reads them too."""
    block = "\n".join(f"    VAR{i}: value-{i}" for i in range(20))
    text = f"shared: &env\n{block}\n" + "".join(f"c{i}: *env\n" for i in range(50))
    docs = load_bytes(text.encode(), file="ok.yaml")
    assert docs[0][1]["c49"]["VAR19"] == "value-19"
    branches = load_tree(text.encode(), fmt="yaml", file="ok.yaml")
    assert len(branches) == 1


_RENDER = """
import sys, time
from pathlib import Path
from sealed_gitops.render import render
started = time.process_time()  # CPU: a loaded machine stretches wall time
try:
    render(Path(sys.argv[1]), "apps")
    print("rendered")
except Exception as exc:
    print(type(exc).__name__, getattr(exc, "file", None), round(time.process_time() - started, 1))
"""


def test_kustomize_build_refuses_alias_bomb_before_kustomize_runs(tmp_path: Path) -> None:
    """kustomize (go-yaml) expands the same bomb in its own memory: it died of 'out of memory'
    under the 1.5 GB cap (and would take the operator's pod with it). The bomb is refused from
    the scan, naming the file, before kustomize runs."""
    repo = tmp_path / "repo"
    (repo / "apps").mkdir(parents=True)
    (repo / "apps" / "bomb.yaml").write_bytes(alias_bomb())
    (repo / "apps" / "kustomization.yaml").write_text("resources:\n- bomb.yaml\n")
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER, str(repo)],
        capture_output=True,
        timeout=120,
        preexec_fn=_cap_memory,
        check=False,
    )
    words = proc.stdout.decode().split()
    assert words[:2] == ["LimitExceeded", "apps/bomb.yaml"], (words, proc.stderr[-1500:])
    assert float(words[2]) < 5.0
