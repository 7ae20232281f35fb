"""Issue 12, Must 5: with the isolate policy, a file that fails to parse is left out, named in the
failures, and the build goes on, in a walked directory and inside a kustomization (Flux's layout:
the Sync's path is one kustomization, so "the unit fails" meant "nothing renders").

As docs/pipeline.md says for ``build``: the objects that rendered go to stdout, each failure to
stderr as one line naming the file, and the exit code is 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.pipeline import FailurePolicy, build
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import SECRET, cli_build, keys_for, sops_encrypt, write

CANARY = "canary-isolate-0b7d"
GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  k: v\n"
#: each of these fails to parse, the way a hurried commit does
BROKEN = {
    "syntax": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata: [unclosed\n",
    "tab-indent": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: bad\n",
    "not-a-mapping": "- just\n- a list\n",
}


@pytest.fixture
def age(age_keys: list[AgeKey]) -> AgeKey:
    return age_keys[0]


def _secret(root: Path, rel: str, sops: str, age: AgeKey) -> None:
    sops_encrypt(sops, write(root, rel, SECRET.format(name="db", value=CANARY)), age=age)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_file_that_fails_to_parse_is_left_out_of_a_walked_directory(
    tmp_path: Path, sops_binary: str, age: AgeKey, kind: str
) -> None:
    write(tmp_path, "deploy/good.yaml", GOOD)
    write(tmp_path, "deploy/bad.yaml", BROKEN[kind])
    _secret(tmp_path, "deploy/secret.yaml", sops_binary, age)
    # a SOPS file whose metadata is broken: valid YAML, but not a SOPS file we can open
    broken_sops = write(tmp_path, "deploy/broken-sops.yaml", SECRET.format(name="x", value="y"))
    sops_encrypt(sops_binary, broken_sops, age=age)
    broken_sops.write_text(broken_sops.read_text().replace("    age:", "    age: nope\n    old:"))

    result = build(root=tmp_path, path="deploy", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert sorted(o.id.name for o in result.objects) == ["db", "good"]
    assert sorted(f.file for f in result.failures) == ["deploy/bad.yaml", "deploy/broken-sops.yaml"]
    assert not result.complete

    done = cli_build(tmp_path, "deploy", age, "--failure-policy", "isolate")
    assert done.returncode == 1
    assert "name: good" in done.stdout and "name: db" in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: deploy/bad.yaml")
    assert lines[1].startswith("error: deploy/broken-sops.yaml")


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_file_that_fails_to_parse_is_left_out_of_a_kustomization(
    tmp_path: Path, sops_binary: str, age: AgeKey, kind: str
) -> None:
    """The Flux layout: the path is one kustomization; its other objects still render."""
    write(tmp_path, "app/good.yaml", GOOD)
    write(tmp_path, "app/bad.yaml", BROKEN[kind])
    _secret(tmp_path, "app/secret.yaml", sops_binary, age)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "namespace: apps\nresources:\n- good.yaml\n- bad.yaml\n- secret.yaml\n",
    )

    result = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert sorted(o.id.name for o in result.objects) == ["db", "good"]
    assert {o.id.namespace for o in result.objects} == {"apps"}
    assert [f.file for f in result.failures] == ["app/bad.yaml"]
    (secret,) = [o for o in result.objects if o.id.kind == "Secret"]
    assert secret.data["stringData"]["password"] == CANARY

    done = cli_build(tmp_path, "app", age, "--failure-policy", "isolate")
    assert done.returncode == 1
    assert "name: good" in done.stdout and "name: db" in done.stdout
    assert done.stderr.startswith("error: app/bad.yaml") and len(done.stderr.splitlines()) == 1

    # atomic: nothing renders, and the failure names the file rather than only the kustomization
    with pytest.raises(SealedGitopsError) as info:
        build(root=tmp_path, path="app", keys=keys_for(age))
    assert str(info.value).startswith("app/bad.yaml")
    atomic = cli_build(tmp_path, "app", age)
    assert atomic.returncode == 1 and atomic.stdout == ""


def test_a_kustomization_that_fails_for_another_reason_is_reported_as_a_unit(
    tmp_path: Path, age: AgeKey
) -> None:
    """Nothing to leave out (every file parses): the kustomization is the failure, and the
    walk goes on with the other units."""
    write(tmp_path, "deploy/good.yaml", GOOD)
    write(tmp_path, "deploy/app/cm.yaml", GOOD.replace("good", "cm"))
    write(
        tmp_path,
        "deploy/app/kustomization.yaml",
        "resources:\n- cm.yaml\npatches:\n- path: missing-target.yaml\n",
    )
    write(
        tmp_path,
        "deploy/app/missing-target.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nowhere\n",
    )
    result = build(root=tmp_path, path="deploy", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    assert [o.id.name for o in result.objects] == ["good"]
    assert [(f.file, f.index) for f in result.failures] == [("deploy/app", None)]
