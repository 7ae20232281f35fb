"""The Go-built reference tools of tests/flux/conftest_gotools.py: the right versions, built
once per version, never twice by parallel workers, found again without Go."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.flux.conftest_gotools import (  # noqa: F401 - fixtures are found by name
    AGE,
    age_tool_fixture,
    cache_root,
    ensure_tool,
    find_go,
    original_environment,
    run_tool,
    sops312_fixture,
)

ROOT = Path(__file__).parent.parent.parent


def test_the_built_tools_are_the_versions_asked_for(age_tool: Path, sops312: Path) -> None:
    assert run_tool(age_tool / "age", ["--version"]).stdout.decode().strip() == "v1.3.2"
    assert b"sops 3.12.2" in run_tool(sops312, ["--version", "--disable-version-check"]).stdout
    assert "-pq" in run_tool(age_tool / "age-keygen", ["-h"], check=False).stderr.decode()


def test_a_second_run_builds_nothing(age_tool: Path) -> None:
    stamp = (age_tool / "stamp.json").read_bytes()
    # A Go that does not exist: the cached build must be found without it.
    again = ensure_tool(AGE, root=cache_root(), go=Path("/nonexistent/go"))
    assert again == age_tool and (age_tool / "stamp.json").read_bytes() == stamp


def test_parallel_builds_build_once(age_tool: Path, tmp_path: Path) -> None:
    """Two processes ask for the same tool in an empty cache, through a `go` that counts its
    `install` runs: one builds, the other waits on the lock and finds the stamp (Go's build cache
    keeps this to a few seconds)."""
    go = find_go()
    assert go is not None  # age_tool was built, so Go is here
    counter = tmp_path / "installs"
    shim = tmp_path / "go"
    shim.write_text(f'#!/bin/sh\n[ "$1" = install ] && echo run >> {counter}\nexec {go} "$@"\n')
    shim.chmod(0o755)
    code = (
        "import sys; from pathlib import Path; from tests.flux.conftest_gotools import AGE, "
        "ensure_tool; print(ensure_tool(AGE, root=Path(sys.argv[1]), go=Path(sys.argv[2])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "cache"), str(shim)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env=original_environment(),  # Go's own caches live under the real HOME
        )
        for _ in range(2)
    ]
    try:
        outs = [p.communicate(timeout=600)[0].decode().strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] == str(tmp_path / "cache" / AGE.key)
    assert counter.read_text().splitlines() == ["run"]  # built exactly once
    leftovers = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [AGE.key]  # no staging directory left behind
