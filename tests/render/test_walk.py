"""The file walk: what is skipped, the order, and that nothing outside the root is read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.errors import PathError
from sealed_gitops.render.walk import IgnoreRules, walk

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"


def rels(root: Path, path: str = ".") -> list[str]:
    return [u.rel for u in walk(root, path)]


def test_walk_skips_what_is_not_a_manifest(repo: Path, write: Callable[..., Path]) -> None:
    for rel in [
        "b.yaml", "a.yml", "c.json", "sub/z.yaml", "sub/a.yaml", "README.md", "notes.txt",
        ".sops.yaml", ".git/config.yaml", ".hidden/x.yaml", "sub/.x.yaml", "keys/age.yaml",
        "sub/keys/kept.yaml",
    ]:
        write(rel, CM)
    assert rels(repo) == [
        "a.yml", "b.yaml", "c.json", "sub/a.yaml", "sub/keys/kept.yaml", "sub/z.yaml",
    ]


@pytest.mark.parametrize(
    ("patterns", "ignored"),
    [
        ("*.json\n", {"c.json", "sub/d.json"}),
        ("/c.json\n", {"c.json"}),
        ("sub/\n", {"sub/d.json", "sub/e.yaml", "sub/deep/f.yaml"}),
        ("sub/*.yaml\n", {"sub/e.yaml"}),
        ("**/deep/**\n", {"sub/deep/f.yaml"}),
        ("*.yaml\n!sub/e.yaml\n", {"a.yaml", "sub/deep/f.yaml"}),
        ("# a comment\n\n[ac].*\n", {"a.yaml", "c.json"}),
        ("deep\n", {"sub/deep/f.yaml"}),
    ],
)
def test_sgignore_patterns(
    repo: Path, write: Callable[..., Path], patterns: str, ignored: set[str]
) -> None:
    files = {"a.yaml", "c.json", "sub/d.json", "sub/e.yaml", "sub/deep/f.yaml"}
    for rel in files:
        write(rel, CM)
    write(".sgignore", patterns)
    assert set(rels(repo)) == files - ignored


def test_ignore_rules_last_match_wins() -> None:
    rules = IgnoreRules(["*.yaml", "!keep.yaml", "keep.yaml"])
    assert rules.ignored("keep.yaml", is_dir=False)
    assert not IgnoreRules(["dir/"]).ignored("dir", is_dir=False)


def test_symlink_to_etc_is_refused(repo: Path, write: Callable[..., Path]) -> None:
    write("ok.yaml", CM)
    os.symlink("/etc", repo / "etc")
    with pytest.raises(PathError) as info:
        walk(repo, ".")
    assert str(info.value).startswith("etc:")
    assert "leaves the repository root" in str(info.value)


def test_symlinked_file_to_etc_is_refused(repo: Path) -> None:
    os.symlink("/etc/hostname", repo / "host.yaml")
    with pytest.raises(PathError, match=r"host\.yaml"):
        walk(repo, ".")


def test_symlink_inside_the_root_is_followed(repo: Path, write: Callable[..., Path]) -> None:
    write("real/a.yaml", CM)
    os.symlink("real", repo / "link")
    os.symlink("..", repo / "real" / "up")  # a loop back to the root is not walked twice
    assert rels(repo) == ["link/a.yaml", "real/a.yaml"]


@pytest.mark.parametrize("path", ["..", "../..", "/etc", "sub/../../x", "escape"])
def test_paths_that_leave_the_root_are_refused(
    repo: Path, write: Callable[..., Path], path: str
) -> None:
    write("sub/a.yaml", CM)
    os.symlink(repo.parent, repo / "escape")
    with pytest.raises(PathError):
        walk(repo, path)


def test_a_file_path_and_a_missing_path(repo: Path, write: Callable[..., Path]) -> None:
    write("one/app.yaml", CM)
    assert rels(repo, "one/app.yaml") == ["one/app.yaml"]
    with pytest.raises(PathError, match="does not exist"):
        walk(repo, "nope")


def test_kustomization_directories_are_units(repo: Path, write: Callable[..., Path]) -> None:
    write("apps/a/kustomization.yaml", "resources: [cm.yaml]\n")
    write("apps/a/cm.yaml", CM)
    write("apps/b.yaml", CM)
    units = walk(repo, "apps")
    assert [(u.rel, u.kustomize) for u in units] == [("apps/a", True), ("apps/b.yaml", False)]
    assert [(u.rel, u.kustomize) for u in walk(repo, "apps/a")] == [("apps/a", True)]
