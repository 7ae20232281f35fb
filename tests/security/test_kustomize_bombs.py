"""Finding 12 of issue 11: kustomize overlay bombs.

The attack: a committer adds an overlay tree in which every level's kustomization lists the level
below twice, through two small directories with different name prefixes. The repository stays a
few kilobytes, but kustomize builds 2**n copies of the base, and its time grows faster than that
(about x2.7 per level here): 14 levels ran into the 60 s timeout, and the operator ran it again on
every retry. The build must be refused from the kustomization graph before kustomize runs, naming
the kustomization; kustomize's output must be read with a byte and object cap (the process killed
past it); and the Sync must stall on such a revision instead of retrying it quickly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.errors import LimitExceeded, SealedGitopsError
from sealed_gitops.render import render
from sealed_gitops.render.kustomize import build, find_kubectl
from sealed_gitops.render.loader import Limits
from tests.operator.conftest import (
    Setup,
    condition,
    ready,
    wait_for,
)

LEVELS = 14


def overlay_bomb(root: Path, levels: int = LEVELS, *, top: str = "bomb") -> dict[str, str]:
    """Files of an exponential overlay tree; ``top``/kustomization.yaml builds 2**levels objects."""
    files = {
        "l0/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
        "l0/kustomization.yaml": "resources:\n- cm.yaml\n",
    }
    for level in range(1, levels + 1):
        for side in "ab":
            files[f"l{level}/{side}/kustomization.yaml"] = (
                f"resources:\n- ../../l{level - 1}\nnamePrefix: {side}-\n"
            )
        files[f"l{level}/kustomization.yaml"] = "resources:\n- a\n- b\n"
    files[f"{top}/kustomization.yaml"] = f"resources:\n- ../l{levels}\n"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_overlay_bomb_is_refused_before_kustomize_runs(tmp_path: Path) -> None:
    """Before the fix this ran kustomize until the timeout (5 s here, 60 s by default) and failed
    with 'timed out' on every retry; now the graph is measured first, in milliseconds."""
    overlay_bomb(tmp_path)
    started = time.monotonic()
    with pytest.raises(SealedGitopsError) as caught:
        render(tmp_path, "bomb", timeout=5.0)
    elapsed = time.monotonic() - started
    assert isinstance(caught.value, LimitExceeded), caught.value
    assert caught.value.file == "bomb/kustomization.yaml"
    assert "kustomizations" in caught.value.reason
    assert elapsed < 2.0, elapsed


def test_shared_bases_within_the_limits_still_build(tmp_path: Path) -> None:
    """The same shape, shallow: kustomize builds it and every object comes out."""
    overlay_bomb(tmp_path, levels=3)
    docs = render(tmp_path, "bomb")
    assert len(docs) == 8
    assert {d.data["metadata"]["name"] for d in docs} >= {"a-a-a-c", "b-b-b-c"}


def test_output_past_the_byte_cap_kills_kustomize(tmp_path: Path) -> None:
    """Output that the graph does not predict (a generator reading a file) is read with a cap:
    past it kustomize is killed and the build refused, naming the kustomization."""
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "big.txt").write_text("z" * 400_000)
    (tmp_path / "gen" / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: big\n  files:\n  - big.txt\n"
    )
    with pytest.raises(LimitExceeded) as caught:
        build(
            tmp_path,
            tmp_path / "gen",
            rel="gen",
            kubectl=find_kubectl(),
            limits=Limits(max_bytes=100_000, max_documents=10),
        )
    assert caught.value.file == "gen"
    assert "100000 bytes" in caught.value.reason
    output, _ = build(tmp_path, tmp_path / "gen", rel="gen")
    assert len(output) > 400_000  # the default cap lets the same build through


def test_output_past_the_object_cap_is_refused(tmp_path: Path) -> None:
    overlay_bomb(tmp_path, levels=4)
    with pytest.raises(LimitExceeded) as caught:
        build(tmp_path, tmp_path / "bomb", rel="bomb", limits=Limits(max_documents=10))
    assert "10 objects" in caught.value.reason


@pytest.mark.e2e
def test_operator_stalls_on_an_overlay_bomb(
    setup: Setup,
    operator_factory: Any,
    tmp_path: Path,
) -> None:
    """A commit in (the bomb under the Sync's path): the Sync turns Stalled with the reason and
    the kustomization named within seconds, instead of running kustomize for a minute on every
    retry."""
    files = overlay_bomb(tmp_path / "scratch")
    files["kustomization.yaml"] = "resources:\n- bomb\n"
    setup.push({f"deploy/{rel}": text for rel, text in files.items()})
    setup.objects()
    started = time.monotonic()
    operator_factory(setup.namespace)
    stalled = wait_for(
        lambda: condition(setup.kube.sync(), "Stalled"), timeout=10.0, what="Stalled"
    )
    assert time.monotonic() - started < 10.0
    assert stalled["status"] == "True", stalled
    assert stalled["reason"] == "BuildFailed"
    assert "kustomization.yaml" in stalled["message"] and "kustomizations" in stalled["message"]
    assert (ready(setup.kube.sync()) or {}).get("status") == "False"


def test_a_long_underscored_number_does_not_stall_the_native_build_screen() -> None:
    """A committer's one-line file, ``x: 1_1_1_..._1x`` (200,000 underscores): the native
    kustomize build screens every file's tokens with a pattern, and a backtracking pattern over
    digits and underscores took time quadratic in the token (8,000 pairs: 0.7 s; this one:
    hours of the operator's CPU). Linear now: well under a second, and still screened."""
    from sealed_gitops.render.kustomize_native import reads_otherwise

    token = b"1" + b"_1" * 200_000
    started = time.process_time()
    assert reads_otherwise(b"x: " + token + b"\n")  # a number with _ : kustomize reads 11...1
    assert not reads_otherwise(b"x: " + token + b"x\n")  # not a number: a string everywhere
    assert time.process_time() - started < 1.0
